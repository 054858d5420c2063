"""The memory browser: search with filters, an item with provenance, delete with a receipt."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QComboBox, QDateEdit, QCheckBox, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QMessageBox, QSplitter, QVBoxLayout,
                               QWidget)

from deskmind.core.memory import uris
from deskmind.core.memory.models import PRIVACY_LEVELS
from deskmind.ui.browser.item_view import ItemView, load_item
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)

KINDS = ("", "note", "meeting", "minutes", "conversation", "markdown", "text", "pdf", "code")


def receipt_text(r: dict[str, Any]) -> str:
    files = r["files_removed"]
    return (f"Removed {len(r['sources'])} source(s) ({r['derived_sources']} derived), "
            f"{r['documents']} documents, {r['chunks']} chunks, {r['fts_rows']} full-text rows and "
            f"{r['vectors']} vectors." + (f" Deleted {len(files)} recording file(s): {', '.join(files)}." if files else ""))


def forget_with_recordings(store: Any, source_id: int, audio_dir: Path | None) -> dict[str, Any]:
    """Forget a source and what derives from it, with the audio Deskmind recorded for it (a voice
    note's or a meeting's files under ``audio_dir``; never a person's own files). Worker thread."""
    remove = None
    if audio_dir is not None:
        try:
            from deskmind.core.speech.storage import made_files_remover
        except ImportError as exc:  # no speech engine installed: there is no recorded audio either
            log.info("recordings are not removed: %s", exc)
        else:
            remove = made_files_remover(audio_dir)
    return store.forget_ids([source_id], remove_files=remove).to_dict()


class MemoryBrowser(QWidget):
    def __init__(self, store: Callable[[], Any], searcher: Callable[[], Any], workers: Workers,
                 audio_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("memoryBrowser")
        self.setWindowTitle("Deskmind — Memory")
        self._store, self._searcher, self.workers = store, searcher, workers
        self.audio_dir = audio_dir
        self.last_receipt: dict[str, Any] | None = None
        self.refreshes = 0  # times the list was refreshed because the memory changed
        self._listing = False  # a refresh's worker is running
        self._stale = False    # the memory changed while it ran: list once more when it ends
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.query = QLineEdit()
        self.query.setObjectName("browserQuery")
        self.query.setPlaceholderText("Search memory (empty: most recent)")
        self.kind = QComboBox()
        self.kind.addItems([k or "any kind" for k in KINDS])
        self.privacy = QComboBox()
        self.privacy.addItems(["any privacy", *PRIVACY_LEVELS])
        self.since_on = QCheckBox("since")
        self.since = QDateEdit()
        self.since.setCalendarPopup(True)
        self.since.setDate(datetime.now().date().replace(day=1))
        for w in (self.query, self.kind, self.privacy, self.since_on, self.since):
            row.addWidget(w)
        lay.addLayout(row)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.results = QListWidget()
        self.results.setObjectName("browserResults")
        self.results.currentItemChanged.connect(lambda cur, _prev: cur and self.open_source(*cur.data(Qt.ItemDataRole.UserRole)))
        self.item_view = ItemView()
        self.item_view.delete_requested.connect(self.confirm_delete)
        self.item_view.open_requested.connect(lambda sid: self.open_source(sid))
        split.addWidget(self.results)
        split.addWidget(self.item_view)
        split.setSizes([320, 560])
        lay.addWidget(split, 1)
        self.status = QLabel()
        self.status.setObjectName("browserStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.receipt = QLabel()
        self.receipt.setObjectName("browserReceipt")
        self.receipt.setWordWrap(True)
        lay.addWidget(self.receipt)
        self._debounce = QTimer(self, singleShot=True, interval=200)
        self._debounce.timeout.connect(self.refresh)
        self.query.textChanged.connect(lambda _t: self._debounce.start())
        for sig in (self.kind.currentIndexChanged, self.privacy.currentIndexChanged,
                    self.since_on.toggled, self.since.dateChanged):
            sig.connect(lambda *_a: self._debounce.start())
        self.resize(900, 560)

    def filters(self) -> Any:
        from deskmind.core.memory.search import SearchFilters

        kind = KINDS[self.kind.currentIndex()]
        priv = self.privacy.currentText() if self.privacy.currentIndex() else None
        since = None
        if self.since_on.isChecked():
            d = self.since.date().toPython()
            since = datetime(d.year, d.month, d.day).timestamp()
        return SearchFilters(kinds=[kind] if kind else None, privacy=[priv] if priv else None, since=since)

    def refresh(self) -> None:
        q = self.query.text().strip()
        filters = self.filters()

        def work() -> list[tuple[str, int, dict, int | None]]:
            if q:
                hits = self._searcher().search(q, limit=50, filters=filters).hits
                return [(f"{h.title or Path(h.source).name} — {' '.join(h.text.split())[:80]}",
                         h.source_id, h.locator, h.chunk_id) for h in hits]
            rows = []
            for s in self._store().list_sources(limit=300):
                if filters.kinds and s.kind not in filters.kinds:
                    continue
                if filters.privacy and s.privacy not in filters.privacy:
                    continue
                if filters.since and (s.mtime or s.created_at) < filters.since:
                    continue
                rows.append((f"{s.title or Path(uris.shown(s.uri)).name}  ({s.kind})", s.id, {}, None))
            return rows

        def failed(e: BaseException) -> None:
            self._listed()
            self.status.setText(f"Search failed: {e}")

        self._listing = True
        self.status.setText("Loading…")   # the database is read (and first opened) in a worker
        self.workers.submit(work, done=self._show_results, failed=failed)

    def memory_changed(self) -> None:
        """Another process or machine (or this one) wrote to the memory: list again, keeping
        the item shown selected when it is still listed. While a listing runs (a search
        embeds its query), changes only mark it stale: one more listing follows it, however
        many writes an index run makes meanwhile. GUI thread."""
        if self._listing:
            self._stale = True
            return
        self.refreshes += 1
        self.refresh()

    def _listed(self) -> None:
        self._listing = False
        if self._stale:
            self._stale = False
            self.memory_changed()

    def _show_results(self, rows: list) -> None:
        cur = self.results.currentItem()
        keep = cur.data(Qt.ItemDataRole.UserRole) if cur is not None else None
        # Re-listing with an item shown is not choosing one: it stays shown, selected again.
        self.results.blockSignals(keep is not None)
        try:
            self.results.clear()
            for label, sid, loc, cid in rows:
                it = QListWidgetItem(label)
                it.setData(Qt.ItemDataRole.UserRole, (sid, loc, cid))
                self.results.addItem(it)
                if keep is not None and (sid, cid) == (keep[0], keep[2]):
                    self.results.setCurrentItem(it)
        finally:
            self.results.blockSignals(False)
        self.status.setText(f"{len(rows)} result(s)")
        self._listed()

    def open_source(self, source_id: int, locator: dict | None = None, chunk_id: int | None = None) -> None:
        self.status.setText("Opening…")
        self.workers.submit(lambda: load_item(self._store(), source_id),
                            done=lambda item: self._opened(item, locator, chunk_id),
                            failed=lambda e: self.status.setText(str(e)))

    def _opened(self, item: Any, locator: dict | None, chunk_id: int | None) -> None:
        if self.status.text() == "Opening…":
            self.status.setText("")
        self.item_view.show_item(item, locator, chunk_id)

    def confirm_delete(self, source_id: int) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete from memory",
                          "Delete this item and everything derived from it (chunks, vectors, minutes "
                          "of a meeting, the audio Deskmind recorded for a voice note or meeting)? "
                          "Your own files on disk are not touched.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("deleteConfirm")
        box.buttonClicked.connect(lambda b: box.standardButton(b) == QMessageBox.StandardButton.Yes
                                  and self.delete(source_id))
        box.open()  # not exec(): no nested event loop
        self._confirm = box

    def delete(self, source_id: int) -> None:
        self.workers.submit(lambda: forget_with_recordings(self._store(), source_id, self.audio_dir),
                            done=self._deleted, failed=lambda e: self.status.setText(f"Delete failed: {e}"))

    def _deleted(self, receipt: dict[str, Any]) -> None:
        self.last_receipt = receipt
        self.receipt.setText(receipt_text(receipt))
        self.item_view.show_deleted()
        self.refresh()
