"""The drop window: drag files and folders in, watch each file, read the summary."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from deskmind.ui.indexing import IndexingService

log = logging.getLogger(__name__)


class DropZone(QWidget):
    def __init__(self, service: IndexingService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setWindowTitle("Deskmind — Index files")
        self.setAcceptDrops(True)
        self.service = service
        self.rows: dict[str, int] = {}
        lay = QVBoxLayout(self)
        self.hint = QLabel("Drop files or folders here to add them to memory.")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("border: 2px dashed #90a4ae; border-radius: 8px; padding: 18px;")
        lay.addWidget(self.hint)
        self.progress = QProgressBar()
        self.progress.setObjectName("dropProgress")
        self.progress.setFormat("%v / %m files")
        lay.addWidget(self.progress)
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("dropTable")
        self.table.setHorizontalHeaderLabels(["File", "Status", "Why"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        lay.addWidget(self.table, 1)
        self.summary = QLabel()
        self.summary.setObjectName("dropSummary")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        row = QHBoxLayout()
        pick = QPushButton("Choose files…")
        pick.clicked.connect(self.choose)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(service.cancel)
        row.addWidget(pick)
        row.addStretch(1)
        row.addWidget(self.cancel_btn)
        lay.addLayout(row)
        service.bridge.index_event.connect(self.on_event)
        service.finished.connect(self.on_finished)
        service.failed.connect(lambda msg: self.summary.setText(f"Indexing failed: {msg}"))
        self.resize(640, 420)

    def choose(self) -> None:
        dlg = QFileDialog(self, "Index files")
        dlg.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dlg.setOption(QFileDialog.Option.DontUseNativeDialog)
        dlg.filesSelected.connect(self.index)
        dlg.open()

    def index(self, paths: list[str]) -> None:
        self.summary.setText(f"Indexing {len(paths)} item(s)…")
        self.service.index(paths)

    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.index(paths)

    def on_event(self, ev: Any) -> None:
        if ev.files_total:
            self.progress.setMaximum(ev.files_total)
            self.progress.setValue(ev.files_done)
        if ev.kind != "file" or not ev.path:
            return
        row = self.rows.get(ev.path)
        if row is None:
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.rows[ev.path] = row
            self.table.setItem(row, 0, QTableWidgetItem(Path(ev.path).name))
            self.table.item(row, 0).setToolTip(ev.path)
        self.table.setItem(row, 1, QTableWidgetItem(ev.status or ""))
        self.table.setItem(row, 2, QTableWidgetItem(ev.reason or ""))

    def on_finished(self, d: dict) -> None:
        for p in d.get("problems", []):  # files the walk reported before any event
            self.on_event(SimpleNamespace(files_total=0, files_done=0, kind="file",
                                          path=p["path"], status=p["status"], reason=p["reason"]))
        text = (f"Indexed {d['indexed']}, unchanged {d['unchanged']}, skipped {d['skipped']}, "
                f"failed {d['failed']} — {d['chunks']} chunks in {d['seconds']:.1f} s.")
        if d.get("cancelled"):
            text += " (stopped early)"
        reasons = [f"{p['status']}: {Path(p['path']).name}: {p['reason']}" for p in d.get("problems", [])[:8]]
        self.summary.setText(text + ("\n" + "\n".join(reasons) if reasons else ""))
        self.progress.setValue(self.progress.maximum())
