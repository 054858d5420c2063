"""The indexing window: drop or choose files and folders, watch each file, read why.

The indexing itself runs in a child process (:class:`IndexingService`); this window only lists
what it reports. The progress bar counts the rows listed for the current run, so the count and
the list agree (files the walk passed over arrive with the summary and are counted then).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QMessageBox, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from deskmind.ui.drops import accept_files, take_files
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
        self.expected = 0            # files the current run will report one by one
        self.dialog: QFileDialog | None = None
        self.details: QMessageBox | None = None
        lay = QVBoxLayout(self)
        self.hint = QLabel("Drop files or folders here, or choose them below, to add them to memory.")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("border: 2px dashed #90a4ae; border-radius: 8px; padding: 18px;")
        lay.addWidget(self.hint)
        self.progress = QProgressBar()
        self.progress.setObjectName("dropProgress")
        self.progress.setFormat("%v / %m files")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        lay.addWidget(self.progress)
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("dropTable")
        self.table.setHorizontalHeaderLabels(["File", "Status", "Why"])
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 200)
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.setToolTip("Double-click a row for the full path and reason")
        self.table.cellDoubleClicked.connect(lambda row, _col: self.show_details(row))
        lay.addWidget(self.table, 1)
        self.summary = QLabel()
        self.summary.setObjectName("dropSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.summary)
        row = QHBoxLayout()
        self.files_btn = QPushButton("Choose files…")
        self.files_btn.setObjectName("dropChooseFiles")
        self.files_btn.clicked.connect(self.choose_files)
        self.folder_btn = QPushButton("Choose folder…")
        self.folder_btn.setObjectName("dropChooseFolder")
        self.folder_btn.clicked.connect(self.choose_folder)
        self.close_btn = QPushButton("Close")
        self.close_btn.setObjectName("dropClose")
        self.close_btn.clicked.connect(self._cancel_or_close)
        row.addWidget(self.files_btn)
        row.addWidget(self.folder_btn)
        row.addStretch(1)
        row.addWidget(self.close_btn)
        lay.addLayout(row)
        service.bridge.index_event.connect(self.on_event)
        service.started.connect(self.on_started)
        service.finished.connect(self.on_finished)
        service.failed.connect(self.on_failed)
        service.busy_changed.connect(self._busy)
        self._busy(service.running is not None)
        self.resize(720, 460)

    # -- choosing (the dialogs are opened, never exec()'d: the event loop keeps running) -------

    def _open_dialog(self, title: str, mode: QFileDialog.FileMode) -> QFileDialog:
        dlg = QFileDialog(self, title)
        dlg.setFileMode(mode)
        if mode == QFileDialog.FileMode.Directory:
            dlg.setOption(QFileDialog.Option.ShowDirsOnly)
        dlg.setOption(QFileDialog.Option.DontUseNativeDialog)
        if self.dialog is None:   # the first time: the home folder, not wherever the app started
            dlg.setDirectory(str(Path.home()))
        else:                     # then where the person last was
            dlg.setDirectory(self.dialog.directory())
            self.dialog.deleteLater()
        dlg.filesSelected.connect(self.index)
        self.dialog = dlg
        dlg.open()
        return dlg

    def choose_files(self) -> QFileDialog:
        return self._open_dialog("Index files", QFileDialog.FileMode.ExistingFiles)

    def choose_folder(self) -> QFileDialog:
        return self._open_dialog("Index a folder", QFileDialog.FileMode.Directory)

    def index(self, paths: list[str]) -> None:
        self.summary.setText(f"Indexing {len(paths)} item(s)…")
        self.service.index(paths)

    def dragEnterEvent(self, event: Any) -> None:
        accept_files(event)

    def dropEvent(self, event: Any) -> None:
        if paths := take_files(event):
            self.index(paths)

    # -- a run -----------------------------------------------------------------------------

    def _busy(self, busy: bool) -> None:
        self.close_btn.setText("Cancel" if busy else "Close")

    def _cancel_or_close(self) -> None:
        if self.service.running is not None:
            self.service.cancel()
        else:
            self.close()

    def on_started(self, paths: list[str]) -> None:
        """A new run lists its own files: the count and the rows then agree."""
        self.table.setRowCount(0)
        self.rows.clear()
        self.expected = 0
        self._count()
        self._busy(True)

    def on_event(self, ev: Any) -> None:
        if ev.kind == "scan" or ev.files_total:
            self.expected = ev.files_total
        if ev.kind == "file" and ev.path:
            self._set_row(ev.path, ev.status or "", ev.reason or "")
        self._count()

    def _count(self, final: bool = False) -> None:
        listed = self.table.rowCount()
        total = max(self.expected, listed)
        if final and not total:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat("no files")
            return
        self.progress.setFormat("%v / %m files")
        self.progress.setRange(0, total)   # 0..0 shows "busy" until the walk has counted
        self.progress.setValue(listed)

    def _set_row(self, path: str, status: str, reason: str) -> None:
        row = self.rows.get(path)
        if row is None:
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.rows[path] = row
            name = QTableWidgetItem(Path(path).name)
            name.setToolTip(path)
            name.setData(Qt.ItemDataRole.UserRole, path)
            self.table.setItem(row, 0, name)
        self.table.setItem(row, 1, QTableWidgetItem(status))
        why = QTableWidgetItem(reason)
        why.setToolTip(reason)
        self.table.setItem(row, 2, why)
        self.table.resizeRowToContents(row)

    def on_finished(self, d: dict) -> None:
        for p in d.get("problems", []):  # files the walk passed over are reported only here
            self._set_row(p["path"], p["status"], p["reason"] or "")
        self.expected = self.table.rowCount()
        self._count(final=True)
        text = (f"Indexed {d['indexed']}, unchanged {d['unchanged']}, skipped {d['skipped']}, "
                f"failed {d['failed']} — {d['chunks']} chunks in {d['seconds']:.1f} s.")
        if d.get("cancelled"):
            text += " (stopped early)"
        reasons = [f"{p['status']}: {Path(p['path']).name}: {p['reason']}" for p in d.get("problems", [])[:8]]
        self.summary.setText(text + ("\n" + "\n".join(reasons) if reasons else ""))

    def on_failed(self, message: str) -> None:
        self.summary.setText(f"Indexing failed: {message}")
        self._count(final=True)

    def show_details(self, row: int) -> QMessageBox:
        """The whole path and reason of a row, selectable, in a window of its own."""
        path = self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)
        status, why = self.table.item(row, 1).text(), self.table.item(row, 2).text()
        box = QMessageBox(QMessageBox.Icon.Information, "Deskmind — File details",
                          f"{path}\n\nStatus: {status}" + (f"\n\nWhy: {why}" if why else ""),
                          QMessageBox.StandardButton.Close, self)
        box.setObjectName("dropDetails")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if self.details is not None:
            self.details.close()
        self.details = box
        box.open()
        return box
