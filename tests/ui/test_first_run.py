"""The welcome window shows on the first start only, says how to begin, and indexes a drop."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from deskmind.ui.desktop_settings import desktop_settings_path, load_desktop_settings
from deskmind.ui.hotkeys.manager import HotkeyStatus

pytestmark = pytest.mark.first_run


def test_first_start_shows_it_once_and_a_drop_indexes(desktop, qtbot, tmp_path):
    win = desktop.first_run
    assert win is not None and win.isVisible()
    assert "Ctrl+Alt+Space" in win.hotkeys.text() and "checking" in win.hotkeys.text()
    assert "<ctrl>" not in win.hotkeys.text()  # written for people, not in pynput's syntax
    assert "bundled" in win.model.text()
    assert str(desktop.core.paths.data_dir) in win.where.text()
    saved = load_desktop_settings(desktop_settings_path(desktop.core.paths.config_dir))
    assert saved.first_run_seen
    from deskmind.ui.first_run import needed

    assert not needed(saved)  # the next start does not show it

    win.on_hotkeys_checked([HotkeyStatus("palette", "<ctrl>+<alt>+<space>", True, "press", "armed"),
                            HotkeyStatus("talk", "<ctrl>+<alt>+j", False, "off", "grab failed")])
    assert "Ask (the palette): Ctrl+Alt+Space \u2014 armed" in win.hotkeys.text()
    assert "Speak a note: Ctrl+Alt+J \u2014 not armed" in win.hotkeys.text()

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "plan.md").write_text("The garden shed gets a new roof in May.")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    with qtbot.waitSignal(desktop.indexing.finished, timeout=60000):
        win.dropEvent(QDropEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                                 Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    assert not desktop.core.store.is_empty()
    win.close()
