"""The first start: what Deskmind is and how to begin, shown once.

Lists the three hotkeys (and whether the self-check armed them), which model answers, a button
and a drop area to index a first folder, and where the data lives. Closing it sets
``first_run_seen`` in desktop.toml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from deskmind.ui.drops import accept_files, take_files
from deskmind.ui.hotkeys.combos import display

ACTION_NAMES = {"palette": "Ask (the palette)", "talk": "Speak a note", "meeting": "Record a meeting"}


def needed(desktop: Any) -> bool:
    """Whether the first-run window should show on this start."""
    return not desktop.first_run_seen


class FirstRunWindow(QWidget):
    folder_chosen = Signal(list)

    def __init__(self, bindings: dict[str, str], model_text: str, data_dir: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("firstRun")
        self.setWindowTitle("Welcome to Deskmind")
        self.setAcceptDrops(True)
        self.bindings = bindings
        lay = QVBoxLayout(self)
        intro = QLabel("Deskmind makes this computer your AI: it remembers your notes, files and "
                       "meetings here, and answers with models that run here unless you allow "
                       "others.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.hotkeys = QLabel()
        self.hotkeys.setObjectName("firstRunHotkeys")
        lay.addWidget(self.hotkeys)
        self.set_hotkey_status({})
        self.model = QLabel(f"Answers come from: {model_text}")
        self.model.setObjectName("firstRunModel")
        self.model.setWordWrap(True)
        lay.addWidget(self.model)
        self.index_button = QPushButton("Index a first folder\u2026 (or drop one here)")
        self.index_button.setObjectName("firstRunIndex")
        self.index_button.clicked.connect(self._choose_folder)
        lay.addWidget(self.index_button)
        self.where = QLabel(f"Your data lives in {data_dir}")
        self.where.setObjectName("firstRunWhere")
        self.where.setWordWrap(True)
        lay.addWidget(self.where)
        close = QPushButton("Start")
        close.setObjectName("firstRunClose")
        close.clicked.connect(self.close)
        lay.addWidget(close)

    def set_hotkey_status(self, armed: dict[str, bool]) -> None:
        lines = []
        for action, name in ACTION_NAMES.items():
            combo = display(self.bindings.get(action) or "")
            state = ("armed" if armed[action] else "not armed: see Settings \u2192 Hotkeys") \
                if action in armed else "checking\u2026"
            lines.append(f"{name}: {combo} \u2014 {state}")
        self.hotkeys.setText("\n".join(lines))

    def on_hotkeys_checked(self, statuses: list) -> None:
        self.set_hotkey_status({s.action: bool(s.armed) for s in statuses})

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Index a folder")
        if folder:
            self.folder_chosen.emit([folder])

    def dragEnterEvent(self, event: Any) -> None:
        accept_files(event)

    def dropEvent(self, event: Any) -> None:
        if paths := take_files(event):
            self.folder_chosen.emit(paths)
            self.index_button.setText(f"Indexing {len(paths)} item(s)\u2026")
            event.acceptProposedAction()


def show_first_run(app: Any, on_seen: Callable[[], None]) -> FirstRunWindow:
    from deskmind.core.models import chosen_model

    chosen = chosen_model(app.core.paths, "general")
    model_text = str(chosen) if chosen else "the model bundled with Deskmind (see Settings \u2192 Models)"
    win = FirstRunWindow(app.desktop.hotkeys.bindings, model_text, app.core.paths.data_dir)
    win.folder_chosen.connect(app.indexing.index)
    app.hotkeys.checked.connect(win.on_hotkeys_checked)
    if app.hotkeys.statuses:
        win.on_hotkeys_checked(app.hotkeys.statuses)
    win.show()
    on_seen()
    return win
