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


def chunks_of(core, source_id):
    return [(cid, locator) for cid, locator, _text in core.store.chunks_of(source_id)]


def selected(view) -> str:
    return view.text.textCursor().selectedText().replace("\u2029", "\n")


def test_a_meeting_citation_opens_the_meeting_at_that_time(qtbot, desktop):
    import time

    from deskmind.core.speech.engine import Segment
    from deskmind.core.speech.storage import meeting_draft
    from deskmind.ui.answers import Citation

    segments = [Segment(0.0, 4.0, "Welcome everyone to the weekly sync.", "me"),
                Segment(4.5, 11.0, "The beta ships on Friday.", "others"),
                Segment(12.6, 16.0, "Ben writes the release notes by Thursday.", "others"),
                Segment(75.0, 80.0, "Thanks, see you next week.", "me")]
    draft = meeting_draft("m-weekly", segments, title="Weekly sync", started_at=time.time(), duration=80.0,
                          audio_files=[], privacy="private")
    sid = desktop.core.remember(draft)
    (chunk_id, loc), = chunks_of(desktop.core, sid)          # the four turns are one passage
    assert loc["start"] == 0.0 and loc["end"] == 80.0
    # As the ask pipeline cites: by uri, with the time of the turn it used.
    cite = Citation(n=1, source=draft.uri, title="Weekly sync", kind="meeting",
                    locator={"start": 12.6, "end": 16.0, "speakers": ["others"]}, chunk_id=chunk_id)
    desktop.open_citation(cite)
    b = desktop.window("browser")
    qtbot.waitUntil(lambda: b.item_view.item is not None and bool(selected(b.item_view)), timeout=10000)
    view = b.item_view
    assert selected(view) == "[0:12] others: Ben writes the release notes by Thursday."
    assert view.where.isVisible() and view.where.text() == "At 0:12–0:16 in the recording (others)"
    # Another citation of the same meeting moves to its own time.
    desktop.open_source_id(sid, {"start": 75.2, "end": 80.0}, chunk_id)
    qtbot.waitUntil(lambda: selected(view).startswith("[1:15]"), timeout=10000)
    assert selected(view) == "[1:15] me: Thanks, see you next week." and view.where.text().startswith("At 1:15–1:20")


def test_a_voice_note_citation_selects_the_segment_as_spoken(qtbot, desktop, tmp_path):
    from deskmind.core.speech.engine import Segment, Transcript
    from deskmind.core.speech.storage import note_draft

    said = [Segment(0.0, 3.1, "Um so buy new running shoes."), Segment(3.4, 6.2, "And book the dentist."),
            Segment(6.5, 9.0, "For Thursday I think.")]
    transcript = Transcript(" ".join(s.text for s in said), said, duration=9.0)
    draft = note_draft("n-1", transcript, tmp_path / "n-1.wav", privacy="private",
                       cleaned="Buy new running shoes; book the dentist for Thursday.")
    sid = desktop.core.remember(draft)
    b = open_in_browser(qtbot, desktop, sid, {"start": 3.4, "end": 6.2})
    view = b.item_view
    qtbot.waitUntil(lambda: bool(selected(view)), timeout=5000)
    assert selected(view) == "[0:03] And book the dentist."
    assert view.text.toPlainText().startswith("Buy new running shoes; book the dentist for Thursday.\n\nAs spoken:\n")
    assert view.where.text() == "At 0:03–0:06 in the recording"
    assert not view.open_btn.isEnabled()                     # its recording is not on this computer
    # The cleaned-up text is cited as a whole, not at a time.
    b.open_source(sid, {"start": 0.0, "end": 9.0, "cleaned": True})
    qtbot.waitUntil(lambda: selected(view).startswith("Buy new running"), timeout=5000)


def test_a_file_citation_opens_at_its_lines_and_offers_the_original(qtbot, desktop, tmp_path):
    from PySide6.QtCore import QObject, QUrl, Slot
    from PySide6.QtGui import QDesktopServices

    notes = tmp_path / "garden.txt"
    notes.write_text("\n\n".join(f"Bed {i}: " + " ".join(f"plant{i}-{j} needs water every {j} days." for j in range(40))
                                 for i in range(6)) + "\n")
    with qtbot.waitSignal(desktop.indexing.finished, timeout=30000):
        desktop.indexing.index([str(notes)])
    sid, = desktop.core.store.resolve(str(notes))
    chunk_id, loc = chunks_of(desktop.core, sid)[-1]
    assert loc["line_start"] > 1
    b = open_in_browser(qtbot, desktop, sid, loc, chunk_id)
    view = b.item_view
    qtbot.waitUntil(lambda: bool(selected(view)), timeout=5000)
    first = view.text.document().findBlock(view.text.textCursor().selectionStart()).blockNumber() + 1
    assert first == loc["line_start"]
    a, z = loc["line_start"], loc["line_end"]
    assert view.where.text() == (f"Line {a}" if a == z else f"Lines {a}–{z}")
    assert view.open_btn.isEnabled() and view.open_btn.text() == f"Open original file (line {a})"

    class Opener(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.urls: list[QUrl] = []

        @Slot(QUrl)
        def open(self, url: QUrl) -> None:
            self.urls.append(url)

    opener = Opener()
    QDesktopServices.setUrlHandler("file", opener, "open")
    try:
        view.open_btn.click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [u.toLocalFile() for u in opener.urls] == [str(notes)]
