"""Hotkeys: capture a combination, disable one, run the self-check, read what is armed."""

from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout,
                               QWidget)

from deskmind.ui.hotkeys.combos import check_bindings, display
from deskmind.ui.hotkeys.manager import HotkeyManager, HotkeyStatus
from deskmind.ui.settings.hotkey_edit import HotkeyEdit

log = logging.getLogger(__name__)

TITLES = {"palette": "Open the palette", "talk": "Push to talk", "meeting": "Start/stop meeting",
          "dictate": "Dictate (types where the cursor is)"}


def sequence_to_combo(seq: QKeySequence) -> str:
    """The first chord of a captured QKeySequence in pynput syntax; '' when empty."""
    if seq.isEmpty():
        return ""
    kc = seq[0]
    mods = kc.keyboardModifiers()
    parts = []
    for flag, name in ((Qt.KeyboardModifier.ControlModifier, "<ctrl>"), (Qt.KeyboardModifier.AltModifier, "<alt>"),
                       (Qt.KeyboardModifier.ShiftModifier, "<shift>"), (Qt.KeyboardModifier.MetaModifier, "<cmd>")):
        if mods & flag:
            parts.append(name)
    key = QKeySequence(kc.key()).toString().lower()
    parts.append(key if len(key) == 1 else f"<{key}>")
    return "+".join(parts)


def combo_to_sequence(combo: str) -> QKeySequence:
    return QKeySequence(display(combo)) if combo else QKeySequence()


class HotkeysPage(QWidget):
    def __init__(self, manager: HotkeyManager, apply: Callable[[dict[str, str], str], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("hotkeysPage")
        self.manager = manager
        self._apply = apply
        lay = QVBoxLayout(self)
        grid = QGridLayout()
        self.edits: dict[str, HotkeyEdit] = {}
        self.status_labels: dict[str, QLabel] = {}
        for r, (action, title) in enumerate(TITLES.items()):
            grid.addWidget(QLabel(title), r, 0)
            edit = HotkeyEdit(combo_to_sequence(manager.bindings.get(action, "")))
            edit.setObjectName(f"hotkey_{action}")
            edit.setMaximumSequenceLength(1)
            edit.editingFinished.connect(lambda a=action: self._edited(a))
            edit.capturing.connect(self._capturing)
            self.edits[action] = edit
            grid.addWidget(edit, r, 1)
            off = QPushButton("Disable")
            off.setObjectName(f"hotkeyDisable_{action}")
            off.clicked.connect(lambda _c=False, e=edit, a=action: (e.clear(), self.apply(changed=a)))
            grid.addWidget(off, r, 2)
            st = QLabel("…")
            st.setObjectName(f"hotkeyStatus_{action}")
            st.setWordWrap(True)
            self.status_labels[action] = st
            grid.addWidget(st, r, 3)
        grid.setColumnStretch(3, 1)
        lay.addLayout(grid)
        row = QHBoxLayout()
        row.addWidget(QLabel("Talk key:"))
        self.mode = QComboBox()
        self.mode.addItems(["auto", "hold", "toggle"])
        self.mode.setCurrentText(manager.talk_mode)
        self.mode.currentTextChanged.connect(lambda _t: self.apply())
        row.addWidget(self.mode)
        self.check_btn = QPushButton("Run self-check")
        self.check_btn.setObjectName("hotkeySelfCheck")
        self.check_btn.clicked.connect(manager.self_check)
        row.addStretch(1)
        row.addWidget(self.check_btn)
        lay.addLayout(row)
        self.problem = QLabel()
        self.problem.setObjectName("hotkeyProblem")
        self.problem.setWordWrap(True)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.problem)
        lay.addStretch(1)
        manager.checked.connect(self.show_statuses)
        self.show_statuses(manager.statuses)

    def bindings(self) -> dict[str, str]:
        return {a: sequence_to_combo(e.keySequence()) for a, e in self.edits.items()}

    def _capturing(self, on: bool) -> None:
        self.manager.capturing = on

    def _edited(self, action: str) -> None:
        # A field finishes editing when a combination is captured and again when it loses focus:
        # re-arm only when a binding really changed.
        if self.bindings() != self.manager.bindings:
            self.apply(changed=action)
        else:   # back to what is armed: an earlier clash message no longer applies
            self.problem.setText(self.manager.instructions or "")

    def apply(self, changed: str | None = None) -> bool:
        b = self.bindings()
        problems = {a: p for a, p in check_bindings(b, changed=changed, titles=TITLES).items() if p}
        if problems:
            self.problem.setText("\n".join(f"{TITLES[a]}: {p}" for a, p in problems.items()))
            return False
        self.problem.setText(self.manager.instructions or "")
        self._apply(b, self.mode.currentText())
        return True

    def show_statuses(self, statuses: list[HotkeyStatus]) -> None:
        for s in statuses:
            lab = self.status_labels.get(s.action)
            if lab is not None:
                mark = "✔" if s.armed else ("—" if s.mode == "off" and s.detail == "disabled" else "✘")
                lab.setText(f"{mark} {s.label}: {s.detail}")
        if self.manager.instructions:
            self.problem.setText(self.manager.instructions)
