"""A key-combination field that a lone modifier key press does not wipe, and that says when
it has the keyboard (``capturing``) so the global hotkeys can stand aside meanwhile.

QKeySequenceEdit starts a new capture on any key press once the last one finished, and a new
capture begins by clearing the field, even when the key pressed is Shift alone. On X11 the hotkey
backend taps Shift on the display whenever it re-arms (to check that key events arrive, and to wake
its record thread when it stops), so the field that just captured Ctrl+Alt+K went blank as soon as
the new binding was armed, and the blank was saved on focus-out. A modifier press alone never makes
a binding (the combination arrives with the non-modifier key, modifiers included), so it is ignored.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFocusEvent, QKeyEvent
from PySide6.QtWidgets import QKeySequenceEdit

_MODIFIER_KEYS = frozenset({Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_AltGr,
                            Qt.Key.Key_Meta, Qt.Key.Key_Super_L, Qt.Key.Key_Super_R,
                            Qt.Key.Key_Hyper_L, Qt.Key.Key_Hyper_R, Qt.Key.Key_CapsLock})


class HotkeyEdit(QKeySequenceEdit):
    capturing = Signal(bool)

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.capturing.emit(True)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.capturing.emit(False)
        super().focusOutEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if Qt.Key(event.key()) in _MODIFIER_KEYS:
            event.accept()
            return
        super().keyPressEvent(event)
