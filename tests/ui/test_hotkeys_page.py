"""Settings → Hotkeys: capturing a combination in the real field (keys sent to the widget).

The Xvfb test (test_e2e_hotkey_capture_xvfb.py) drives the whole app with the real backend; this
one pins the field's own behaviour: a lone modifier tap after a capture (what the X11 backend sends
when it re-arms) keeps the combination, and one capture is applied once.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QPushButton, QVBoxLayout, QWidget

from deskmind.ui.bridge import CoreBridge
from deskmind.ui.hotkeys.manager import HotkeyManager
from deskmind.ui.settings.hotkeys_page import HotkeysPage
from deskmind.ui.tasks import Workers

CTRL_ALT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier


@pytest.fixture
def page(qtbot):
    bridge = CoreBridge()
    manager = HotkeyManager(bridge, Workers(bridge), {"palette": "<ctrl>+<alt>+<space>",
                                                      "talk": "<ctrl>+<alt>+j", "meeting": ""},
                            backend_factory=None)
    applied: list[dict[str, str]] = []

    def apply(bindings: dict[str, str], mode: str) -> None:
        applied.append(bindings)
        manager.rebind(bindings, mode)

    host = QWidget()
    lay = QVBoxLayout(host)
    p = HotkeysPage(manager, apply)
    other = QLineEdit()
    lay.addWidget(p)
    lay.addWidget(other)
    qtbot.addWidget(host)
    host.show()
    qtbot.waitExposed(host)
    yield p, other, applied
    manager.stop()


def test_capture_survives_a_shift_tap_and_focus_out(qtbot, page):
    p, other, applied = page
    field = p.edits["palette"]
    field.setFocus()
    qtbot.waitUntil(field.hasFocus)
    qtbot.keyClick(field, Qt.Key.Key_K, CTRL_ALT)
    qtbot.waitUntil(lambda: len(applied) == 1, timeout=3000)
    assert applied[0]["palette"] == "<ctrl>+<alt>+k"
    # What the X11 backend sends while re-arming: Shift alone, to the focused field.
    qtbot.keyClick(field, Qt.Key.Key_Shift, Qt.KeyboardModifier.ShiftModifier)
    assert field.keySequence().toString() == "Ctrl+Alt+K"
    other.setFocus()
    qtbot.waitUntil(lambda: not field.hasFocus())
    qtbot.wait(50)
    assert field.keySequence().toString() == "Ctrl+Alt+K"
    assert [b["palette"] for b in applied] == ["<ctrl>+<alt>+k"]   # the focus-out changed nothing
    assert p.manager.bindings["palette"] == "<ctrl>+<alt>+k"


def test_a_new_capture_replaces_the_old_and_disable_switches_it_off(qtbot, page):
    p, _other, applied = page
    field = p.edits["talk"]
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_K, CTRL_ALT)
    qtbot.waitUntil(lambda: len(applied) == 1, timeout=3000)
    qtbot.keyClick(field, Qt.Key.Key_N, CTRL_ALT)
    qtbot.waitUntil(lambda: len(applied) == 2, timeout=3000)
    assert field.keySequence().toString() == "Ctrl+Alt+N" and applied[1]["talk"] == "<ctrl>+<alt>+n"
    disable = p.findChild(QPushButton, "hotkeyDisable_talk")
    assert disable.text() == "Disable"
    disable.click()
    assert field.keySequence().isEmpty() and applied[2]["talk"] == ""
