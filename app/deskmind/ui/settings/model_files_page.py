"""Model files: pull a GGUF (URL or file) with a progress bar and Cancel, choose one per class.

The pull runs in a Python thread; progress and the outcome reach the widgets through queued
Qt signals, so the GUI thread never waits on the network or the disk.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from deskmind.core.config.paths import Paths
from deskmind.core.errors import DeskmindError
from deskmind.core.models import MODEL_CLASSES, load_choices, set_chosen_model
from deskmind.core.models.download import library_dir, pull


class _Relay(QObject):
    progress = Signal(int, int)  # done, total (0: unknown)
    finished = Signal(str, str)  # installed path or "", error message or ""


class ModelFilesPage(QWidget):
    def __init__(self, paths: Paths, ledger: Callable[[], Any] | None = None,
                 changed: Callable[[], None] = lambda: None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelFilesPage")
        self.paths, self._ledger, self._changed = paths, ledger, changed
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self.relay = _Relay(self)
        self.relay.progress.connect(self._on_progress)
        self.relay.finished.connect(self._on_finished)

        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Pull a GGUF model from an https:// link (a Hugging Face "
                             "\u201cresolve\u201d link works) or a file on this computer."))
        row = QHBoxLayout()
        self.source = QLineEdit()
        self.source.setObjectName("modelSource")
        self.source.setPlaceholderText("https://huggingface.co/ORG/REPO/resolve/main/FILE.gguf")
        self.pull_button = QPushButton("Pull")
        self.pull_button.setObjectName("modelPull")
        self.pull_button.clicked.connect(self.start_pull)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("modelCancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_pull)
        row.addWidget(self.source, 1)
        row.addWidget(self.pull_button)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self.bar = QProgressBar()
        self.bar.setObjectName("modelProgress")
        lay.addWidget(self.bar)
        self.status = QLabel()
        self.status.setObjectName("modelFilesStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        lay.addWidget(QLabel("In the library:"))
        self.files = QListWidget()
        self.files.setObjectName("modelFiles")
        lay.addWidget(self.files, 1)
        use = QHBoxLayout()
        self.klass = QComboBox()
        self.klass.setObjectName("modelClass")
        self.klass.addItems(list(MODEL_CLASSES))
        self.klass.setCurrentText("general")
        self.use_button = QPushButton("Use for this class")
        self.use_button.setObjectName("modelUse")
        self.use_button.clicked.connect(self.use_selected)
        use.addWidget(self.klass)
        use.addWidget(self.use_button)
        use.addStretch(1)
        lay.addLayout(use)
        self.refresh()

    def refresh(self) -> None:
        self.files.clear()
        lib = library_dir(self.paths.data_dir)
        chosen = {}
        try:
            chosen = {str(p): c for c, p in load_choices(self.paths).items()}
        except DeskmindError as exc:
            self.status.setText(str(exc))
        for p in sorted(lib.glob("*.gguf")) if lib.is_dir() else []:
            mark = f"  \u2190 {chosen[str(p.resolve())]}" if str(p.resolve()) in chosen else ""
            self.files.addItem(f"{p.name}  ({p.stat().st_size / 1e6:.1f} MB){mark}")
            self.files.item(self.files.count() - 1).setData(256, str(p))

    def start_pull(self) -> None:
        source = self.source.text().strip()
        if not source or self._thread is not None:
            return
        self._cancel = threading.Event()
        self.bar.setRange(0, 100)
        self.bar.setValue(0)
        self.pull_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"Pulling {source}\u2026")
        ledger = self._ledger() if (self._ledger and "://" in source) else None

        def work() -> None:
            try:
                res = pull(source, self.paths.data_dir, ledger=ledger, cancel=self._cancel,
                           progress=lambda d, t: self.relay.progress.emit(d, t or 0))
                self.relay.finished.emit(str(res.path), "")
            except DeskmindError as exc:
                self.relay.finished.emit("", str(exc))
            except Exception as exc:  # a worker must always report back
                self.relay.finished.emit("", f"pull failed: {exc}")

        self._thread = threading.Thread(target=work, name="model-pull", daemon=True)
        self._thread.start()

    def cancel_pull(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _on_progress(self, done: int, total: int) -> None:
        if total:
            self.bar.setValue(int(100 * done / total))
        else:
            self.bar.setRange(0, 0)

    def _on_finished(self, path: str, error: str) -> None:
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None
        self.pull_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if error:
            self.status.setText(error)
        else:
            self.bar.setRange(0, 100)
            self.bar.setValue(100)
            self.status.setText(f"{Path(path).name} is in the library. Choose a class and "
                                "click \u201cUse for this class\u201d.")
        self.refresh()

    def use_selected(self) -> bool:
        item = self.files.currentItem()
        if item is None:
            self.status.setText("Select a model file first.")
            return False
        cls = self.klass.currentText()
        try:
            set_chosen_model(self.paths, cls, Path(item.data(256)))
        except DeskmindError as exc:
            self.status.setText(str(exc))
            return False
        self.status.setText(f"{cls}: {Path(item.data(256)).name}")
        self._changed()
        self.refresh()
        return True
