"""The indexing window, driven as a person does: choose a folder in the dialog, watch the count,
read why a file was skipped, close it when done."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLineEdit


def folder_of_six(tmp_path):
    d = tmp_path / "notes"
    d.mkdir()
    for n in "abcde":
        (d / f"{n}.md").write_text(f"# {n}\n\nA note about the letter {n}.\n")
    os.symlink(d / "gone.md", d / "dangling.md")     # passed over by the walk, listed at the end
    return d


def test_choose_folder_count_matches_rows_then_close(qtbot, desktop, tmp_path):
    folder = folder_of_six(tmp_path)
    dz = desktop.show_window("dropzone")
    qtbot.waitExposed(dz)
    assert dz.close_btn.text() == "Close"
    qtbot.mouseClick(dz.folder_btn, Qt.MouseButton.LeftButton)
    dlg = dz.dialog
    qtbot.waitUntil(dlg.isVisible)
    assert dlg.fileMode() == QFileDialog.FileMode.Directory
    busy = []
    desktop.indexing.busy_changed.connect(busy.append)
    name = dlg.findChild(QLineEdit, "fileNameEdit")
    qtbot.keyClicks(name, str(folder), delay=5)   # typed as a person types: the completer keeps up
    qtbot.keyClick(name, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: busy[:1] == [True], timeout=5000)
    assert not dlg.isVisible() and dz.close_btn.text() == "Cancel"
    qtbot.waitUntil(lambda: "Indexed" in dz.summary.text() or "failed" in dz.summary.text(), timeout=30000)
    assert dz.summary.text().startswith("Indexed 5,"), dz.summary.text()
    qtbot.waitUntil(lambda: busy == [True, False], timeout=5000)
    assert dz.table.rowCount() == 6
    assert dz.progress.text() == "6 / 6 files"
    assert dz.close_btn.text() == "Close"
    rows = {dz.table.item(r, 0).text(): r for r in range(dz.table.rowCount())}
    why = dz.table.item(rows["dangling.md"], 2)
    assert why.text().startswith("broken symbolic link") and why.toolTip() == why.text()
    # The details view: double-click the row (a double click is a click, then a double-click event).
    rect = dz.table.visualItemRect(why)
    qtbot.mouseClick(dz.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(dz.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: dz.details is not None and dz.details.isVisible(), timeout=3000)
    assert str(folder / "dangling.md") in dz.details.text() and why.text() in dz.details.text()
    dz.details.close()
    qtbot.mouseClick(dz.close_btn, Qt.MouseButton.LeftButton)
    assert not dz.isVisible()


def test_the_why_column_wraps_instead_of_cutting_off(qtbot, desktop, tmp_path):
    dz = desktop.show_window("dropzone")
    dz.resize(520, 400)
    qtbot.waitExposed(dz)
    dz.on_started(["x"])
    reason = "unsupported file type '.xyz' (Deskmind reads text, Markdown, PDF, DOCX, HTML and code)"
    dz._set_row(str(tmp_path / "blob.xyz"), "skipped", reason)
    item = dz.table.item(0, 2)
    fm = dz.table.fontMetrics()
    assert fm.horizontalAdvance(reason) > dz.table.columnWidth(2)          # too long for one line
    assert dz.table.rowHeight(0) >= 2 * fm.height()                        # so it wraps
    assert dz.table.columnViewportPosition(2) + dz.table.columnWidth(2) <= dz.table.viewport().width()
    assert item.toolTip() == reason


def test_a_folder_gone_before_indexing_says_so(qtbot, desktop, tmp_path):
    dz = desktop.show_window("dropzone")
    qtbot.waitExposed(dz)
    gone = tmp_path / "moved"
    dz.index([str(gone)])
    qtbot.waitUntil(lambda: dz.summary.text().startswith("Indexing failed"), timeout=30000)
    assert f"no such file or folder: {gone}" in dz.summary.text()
    qtbot.waitUntil(lambda: dz.close_btn.text() == "Close", timeout=5000)
    assert dz.progress.text() == "no files" and dz.table.rowCount() == 0
