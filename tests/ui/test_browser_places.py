"""The memory browser over real memory: deleting recordings, and items opened at their place."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from tests.fakes.audio import speech_wav


def open_in_browser(qtbot, app, source_id, locator=None, chunk_id=None):
    app.open_source_id(source_id, locator, chunk_id)
    b = app.window("browser")
    qtbot.waitUntil(lambda: b.item_view.item is not None and b.item_view.item["source"].id == source_id,
                    timeout=10000)
    return b


def test_deleting_a_voice_note_deletes_its_recording_and_says_so(qtbot, desktop, whisper_engine, speech_dir):
    from deskmind.core.speech import Speech

    own = speech_wav(speech_dir, "Pick up the dry cleaning on Tuesday afternoon.")
    note = Speech(desktop.core, engine=whisper_engine).note_from_file(own)
    recording = note.audio_path.resolve()
    assert recording.exists() and desktop.core.paths.audio_dir.resolve() in recording.parents
    b = open_in_browser(qtbot, desktop, note.source_id)
    b.item_view.delete_btn.click()
    box = b._confirm
    qtbot.waitUntil(box.isVisible, timeout=2000)
    assert "audio Deskmind recorded" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: b.last_receipt is not None, timeout=10000)
    assert not recording.exists()
    assert b.last_receipt["files_removed"] == [str(recording)]
    assert "Deleted 1 recording file(s)" in b.receipt.text() and str(recording) in b.receipt.text()
    assert desktop.core.store.get_source(note.source_id) is None
    assert own.exists()                 # the file the note was made from is the person's own
