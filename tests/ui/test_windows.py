from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from deskmind.ui.hud import TalkHud
from tests.ui.conftest import remember_note


def test_dropzone_shows_each_file_and_why(qtbot, desktop, tmp_path):
    (tmp_path / "a.md").write_text("# Alpha\n\nFirst file about alpacas.\n")
    (tmp_path / "b.txt").write_text("Second file about bees.\n")
    (tmp_path / "blob.xyz").write_bytes(b"\x00\x01binary")
    dz = desktop.window("dropzone")
    dz.show()
    states = []
    desktop.indexing.busy_changed.connect(states.append)
    dz.index([str(tmp_path)])
    qtbot.waitUntil(lambda: "Indexed" in dz.summary.text(), timeout=30000)
    text = dz.summary.text()
    assert "Indexed 2" in text and "skipped 1" in text
    assert "blob.xyz: unsupported file type" in text      # the reason, in words
    rows = {dz.table.item(r, 0).text(): (dz.table.item(r, 1).text(), dz.table.item(r, 2).text())
            for r in range(dz.table.rowCount())}
    assert rows["a.md"][0] == "indexed" and rows["blob.xyz"][0] == "skipped"
    assert rows["blob.xyz"][1].startswith("unsupported file type")
    assert states == [True, False]
    assert desktop.tray.state == "idle"


def test_pause_indexing_holds_the_queue(qtbot, desktop, tmp_path):
    (tmp_path / "n.txt").write_text("notes on narwhals\n")
    desktop.tray.act_pause.trigger()                 # Pause indexing
    desktop.indexing.index([str(tmp_path)])
    qtbot.wait(50)
    assert desktop.indexing.running is None and desktop.indexing.queue
    with qtbot.waitSignal(desktop.indexing.finished, timeout=30000) as sig:
        desktop.tray.act_pause.trigger()             # resume
    assert sig.args[0]["indexed"] == 1


def test_browser_search_provenance_delete_receipt_export(qtbot, desktop, tmp_path):
    core = desktop.core
    meeting = remember_note(core, "Ana: we ship the beta on Friday.\n\nBen: I will write the release notes.",
                            title="Weekly sync", kind="meeting",
                            locators=[{"start": 0.0, "end": 4.0}, {"start": 4.0, "end": 9.5}])
    remember_note(core, "Decision: beta ships Friday. Action: Ben writes release notes.",
                  title="Minutes: Weekly sync", kind="minutes", parent_id=meeting)
    b = desktop.show_window("browser")
    qtbot.keyClicks(b.query, "release notes beta")
    qtbot.waitUntil(lambda: b.results.count() >= 2, timeout=10000)
    b.kind.setCurrentText("meeting")
    qtbot.waitUntil(lambda: b.results.count() >= 1 and all("Weekly sync —" in b.results.item(i).text()
                                                         for i in range(b.results.count())), timeout=10000)
    b.results.setCurrentRow(0)
    qtbot.waitUntil(lambda: b.item_view.item is not None, timeout=5000)
    prov = b.item_view.provenance.text()
    assert "Derived from it" in prov and "Minutes: Weekly sync" in prov
    out = b.item_view.export_to(str(tmp_path / "sync.md"))
    md = out.read_text()
    assert md.startswith("# Weekly sync") and "release notes" in md
    b.item_view.delete_btn.click()
    box = b._confirm
    qtbot.waitUntil(box.isVisible, timeout=2000)
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: b.last_receipt is not None, timeout=10000)
    r = b.last_receipt
    assert len(r["sources"]) == 2 and r["derived_sources"] == 1 and r["vectors"] >= 3
    assert "1 derived" in b.receipt.text()
    assert core.store.get_source(meeting) is None


def test_hud_recording_level_transcribing_toast(qtbot):
    hud = TalkHud()
    qtbot.addWidget(hud)
    hud.recording("hold")
    assert hud.isVisible() and "release to stop" in hud.label.text()
    hud.set_level(0.42)
    assert hud.meter.value() == 42
    hud.transcribing()
    assert hud.label.text() == "Transcribing…" and not hud.meter.isVisible()
    note = {"id": 7, "title": "Buy milk"}
    hud.toast("Saved: Buy milk", note)
    with qtbot.waitSignal(hud.note_clicked, timeout=1000) as sig:
        qtbot.mouseClick(hud, Qt.MouseButton.LeftButton)
    assert sig.args == [note] and not hud.isVisible()


def test_settings_hotkeys_apply_live_and_storage_backup(qtbot, desktop, tmp_path):
    from PySide6.QtGui import QKeySequence

    from deskmind.ui.desktop_settings import load_desktop_settings

    w = desktop.show_window("settings")
    page = w.pages["Hotkeys"]
    page.edits["talk"].setKeySequence(QKeySequence("Ctrl+Alt+T"))     # the terminal shortcut
    assert not page.apply() and "terminal" in page.problem.text()
    page.edits["talk"].setKeySequence(QKeySequence("Ctrl+Shift+F9"))
    assert page.apply()
    saved = load_desktop_settings(desktop.prefs.path)
    assert saved.hotkeys.bindings["talk"] == "<ctrl>+<shift>+<f9>"
    assert desktop.hotkeys.bindings["talk"] == "<ctrl>+<shift>+<f9>"     # live, no restart
    storage = w.pages["Storage"]
    w.show_page("Storage")
    qtbot.waitUntil(lambda: "sources" in storage.stats.text(), timeout=5000)
    storage.backup_to(str(tmp_path / "b.db"))
    qtbot.waitUntil(lambda: "Backup written" in storage.status.text(), timeout=10000)
    assert (tmp_path / "b.db").stat().st_size > 0


def test_a_hotkey_clash_names_the_action_being_set_and_the_one_holding_the_keys(qtbot, desktop):
    from PySide6.QtGui import QKeySequence

    w = desktop.show_window("settings")
    page = w.pages["Hotkeys"]
    page.edits["talk"].setKeySequence(QKeySequence("Ctrl+Shift+F9"))
    assert page.apply()
    page.edits["palette"].setKeySequence(QKeySequence("Ctrl+Shift+F9"))
    assert not page.apply(changed="palette")
    assert page.problem.text() == "Open the palette: Ctrl+Shift+F9 is already bound to Push to talk"
