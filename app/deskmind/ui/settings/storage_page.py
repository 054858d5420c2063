"""Storage: where the data lives, backup now, re-embed, what memory holds."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)


class StoragePage(QWidget):
    def __init__(self, core: Any, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("storagePage")
        self.core, self.workers = core, workers
        lay = QVBoxLayout(self)
        p = core.paths
        self.where = QLabel(f"Data folder: {p.data_dir}\nSettings: {p.config_dir}\nCache: {p.cache_dir}\n"
                            "Set DESKMIND_HOME to keep everything under another folder.")
        self.where.setWordWrap(True)
        lay.addWidget(self.where)
        self.stats = QLabel("…")
        self.stats.setObjectName("storageStats")
        lay.addWidget(self.stats)
        row = QHBoxLayout()
        open_btn = QPushButton("Open data folder")
        open_btn.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(p.data_dir))))
        self.backup_btn = QPushButton("Back up now…")
        self.backup_btn.setObjectName("backupNow")
        self.backup_btn.clicked.connect(self.choose_backup)
        self.reembed_btn = QPushButton("Re-embed memory")
        self.reembed_btn.setObjectName("reembed")
        self.reembed_btn.setToolTip("Rebuild the vector index with the configured embedding model; "
                                    "search keeps working on the old index until it is done")
        self.reembed_btn.clicked.connect(self.reembed)
        for b in (open_btn, self.backup_btn, self.reembed_btn):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.progress = QProgressBar()
        self.progress.hide()
        lay.addWidget(self.progress)
        self.status = QLabel()
        self.status.setObjectName("storageStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addStretch(1)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        def fmt(s: dict) -> str:
            v = s["vector_index"]
            if s.get("backend") == "postgres":
                # The server's figures: Deskmind's tables, not PostgreSQL's own catalog.
                where = (f"Memory: PostgreSQL {s['server_version']} with pgvector {s['pgvector']}, "
                         f"database {s['database']} at {s['server']} ({s['db_path']})")
                size = s["memory_bytes"]
            else:
                where, size = f"Memory: {s['db_path']}", s["db_bytes"]
            return (f"{where}\n{s['sources']} sources, {s['chunks']} chunks, {size / 1e6:.1f} MB; vectors: "
                    + (f"{v['vectors']} ({v['model_id']}, {v['dim']}-d)" if v else "none yet"))

        self.workers.submit(lambda: fmt(self.core.store.stats()), done=self.stats.setText,
                            failed=lambda e: self.stats.setText(f"cannot read memory: {e}"))

    def choose_backup(self) -> None:
        dlg = QFileDialog(self, "Back up memory to")
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dlg.setOption(QFileDialog.Option.DontUseNativeDialog)
        dlg.selectFile(f"deskmind-backup-{time.strftime('%Y%m%d-%H%M')}{self.backup_suffix()}")
        dlg.fileSelected.connect(self.backup_to)
        dlg.open()

    def backup_suffix(self) -> str:
        """``.dump`` for a PostgreSQL memory (pg_dump's custom format), ``.db`` for a SQLite
        file; read from the settings, without connecting to anything."""
        from deskmind.core.memory.urls import StorageUrlError, parse_location

        try:
            backend = parse_location(self.core.memory_location()).backend
        except StorageUrlError:
            return ".db"
        return ".dump" if backend == "postgres" else ".db"

    def backup_to(self, path: str) -> None:
        self.status.setText("Backing up…")
        self.workers.submit(lambda: self.core.store.backup(Path(path)),
                            done=lambda dest: self.status.setText(f"Backup written: {dest} ({Path(dest).stat().st_size / 1e6:.1f} MB)"),
                            failed=lambda e: self.status.setText(f"Backup failed: {e}"))

    def reembed(self) -> None:
        from deskmind.core.memory.reembed import reembed

        self.reembed_btn.setEnabled(False)
        self.progress.show()
        bridge = self.workers.bridge

        def progress(p: Any) -> None:  # worker thread: only through the bridge
            bridge.run_on_main(self._progress, p.done, p.total)

        def done(res: Any) -> None:
            self.reembed_btn.setEnabled(True)
            self.progress.hide()
            self.status.setText(f"Vector index for {res.model_id} is active: {res.embedded} chunks embedded "
                                f"in {res.seconds:.1f} s" if res else "Re-embedding was cancelled")
            self.refresh()

        def failed(e: BaseException) -> None:
            self.reembed_btn.setEnabled(True)
            self.progress.hide()
            self.status.setText(f"Re-embedding failed: {e}")

        self.workers.submit(lambda: reembed(self.core.store, self.core.embedder(), on_progress=progress),
                            done=done, failed=failed)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
