"""Model files: the recommended catalogue (one click chooses a model for its class), pull a
GGUF (URL or file) with a progress bar and Cancel, choose one per class.

The pull runs in a Python thread; progress and the outcome reach the widgets through queued
Qt signals, so the GUI thread never waits on the network or the disk.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from deskmind.core.config.paths import Paths
from deskmind.core.errors import DeskmindError
from deskmind.core.models import MODEL_CLASSES, load_choices, set_chosen_model
from deskmind.core.models.catalogue import (CATALOGUE, CatalogueEntry, chosen_entries, in_library,
                                            machine_ram_mb)
from deskmind.core.models.download import library_dir, pull
from deskmind.ui.settings.model_catalogue import ModelCatalogue


class _Relay(QObject):
    progress = Signal(int, int)  # done, total (0: unknown)
    finished = Signal(str, str)  # installed path or "", error message or ""


class ModelFilesPage(QWidget):
    def __init__(self, paths: Paths, ledger: Callable[[], Any] | None = None,
                 changed: Callable[[], None] = lambda: None, parent: QWidget | None = None, *,
                 catalogue: Sequence[CatalogueEntry] = CATALOGUE, ram_mb: int | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelFilesPage")
        self.paths, self._ledger, self._changed = paths, ledger, changed
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._use_after_pull: str | None = None  # the class a catalogue pull is for
        self._entries = {e.id: e for e in catalogue}
        self.ram_mb = machine_ram_mb() if ram_mb is None else ram_mb
        self.relay = _Relay(self)
        self.relay.progress.connect(self._on_progress)
        self.relay.finished.connect(self._on_finished)

        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Recommended models (one click chooses a model for its class; "
                             "one not yet here is downloaded first):"))
        self.catalogue = ModelCatalogue()
        self.catalogue.use_requested.connect(self.use_catalogue)
        lay.addWidget(self.catalogue, 1)
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
        chosen, in_use = {}, {}
        try:
            chosen = {str(p): c for c, p in load_choices(self.paths).items()}
            in_use = chosen_entries(self.paths, self._entries.values())
        except DeskmindError as exc:
            self.status.setText(str(exc))
        entries = list(self._entries.values())
        here = {e.id for e in entries if in_library(e, self.paths.data_dir) is not None}
        self.catalogue.show_entries([(e, e.ram_mb <= self.ram_mb) for e in entries], self.ram_mb,
                                    in_use, here, busy=self._thread is not None)
        for p in sorted(lib.glob("*.gguf")) if lib.is_dir() else []:
            mark = f"  \u2190 {chosen[str(p.resolve())]}" if str(p.resolve()) in chosen else ""
            self.files.addItem(f"{p.name}  ({p.stat().st_size / 1e6:.1f} MB){mark}")
            self.files.item(self.files.count() - 1).setData(256, str(p))

    def use_catalogue(self, entry_id: str) -> None:
        """Choose a catalogue model for its class: at once when its file is here, else after
        pulling it (a request that leaves the machine, recorded in the egress ledger)."""
        e = self._entries[entry_id]
        if self._thread is not None:
            return
        local = in_library(e, self.paths.data_dir)
        if local is None:
            self._use_after_pull = e.cls
            self._pull(e.url, e.sha256)
            return
        try:
            set_chosen_model(self.paths, e.cls, local)
        except DeskmindError as exc:
            self.status.setText(str(exc))
            return
        self.status.setText(f"{e.cls}: {e.title}")
        self._changed()
        self.refresh()

    def start_pull(self) -> None:
        source = self.source.text().strip()
        if source:
            self._use_after_pull = None
            self._pull(source)

    def _pull(self, source: str, sha256: str | None = None) -> None:
        if self._thread is not None:
            return
        self._cancel = threading.Event()
        self.bar.setRange(0, 100)
        self.bar.setValue(0)
        self.pull_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"Pulling {source}\u2026")
        make_ledger = self._ledger if "://" in source else None

        def work() -> None:
            try:
                # The ledger opens the memory database: here, never on the GUI thread.
                ledger = make_ledger() if make_ledger is not None else None
                res = pull(source, self.paths.data_dir, sha256=sha256, ledger=ledger, cancel=self._cancel,
                           progress=lambda d, t: self.relay.progress.emit(d, t or 0))
                self.relay.finished.emit(str(res.path), "")
            except DeskmindError as exc:
                self.relay.finished.emit("", str(exc))
            except Exception as exc:  # a worker must always report back
                self.relay.finished.emit("", f"pull failed: {exc}")

        self._thread = threading.Thread(target=work, name="model-pull", daemon=True)
        self._thread.start()
        self.refresh()  # the catalogue's buttons wait for this pull

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
        use_for, self._use_after_pull = self._use_after_pull, None
        if error:
            self.status.setText(error)
        else:
            self.bar.setRange(0, 100)
            self.bar.setValue(100)
            self.status.setText(f"{Path(path).name} is in the library. Choose a class and "
                                "click \u201cUse for this class\u201d.")
            if use_for is not None:
                try:
                    set_chosen_model(self.paths, use_for, Path(path))
                    self.status.setText(f"{use_for}: {Path(path).name}")
                    self._changed()
                except DeskmindError as exc:
                    self.status.setText(str(exc))
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
