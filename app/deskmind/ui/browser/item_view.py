"""One memory item: its text scrolled to the cited place (a passage, a time in a recording, a
page or lines), its provenance, and its original file when that is on this computer."""

from __future__ import annotations

import html
import logging
import subprocess
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QTextCursor
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPushButton, QTextBrowser,
                               QVBoxLayout, QWidget)

from deskmind.core.memory import uris
from deskmind.ui.browser.place import (RECORDED_KINDS, desktop_opener, describe, display_text, is_timed,
                                       original_file, timed_range, where_to_open)
from deskmind.ui.browser.provenance import provenance_lines, when

from deskmind.core.memory.machine import machine_label

log = logging.getLogger(__name__)


def load_item(store: Any, source_id: int) -> dict[str, Any]:
    """Everything the view shows, read in a worker: source, text, chunks, parent, derived."""
    src = store.get_source(source_id)
    if src is None:
        raise LookupError(f"source {source_id} is no longer in memory")
    stored = store.document_text(source_id)
    chunks = store.chunks_of(source_id)
    derived = store.derived_from(source_id)
    parent = store.get_source(src.parent_id) if src.parent_id else None
    text = stored if stored is not None else "\n\n".join(c[2] for c in chunks)
    elsewhere = bool(src.machine) and src.machine != store.scope.id
    machine = machine_label(src.machine, store.machines(), store.scope.id) if src.machine else ""
    return {"source": src, "text": text, "display": display_text(src.kind, text, src.metadata or {}),
            "chunks": chunks, "derived": derived, "parent": parent, "machine": machine,
            # A path indexed on another machine names a file there, not here.
            "original": None if elsewhere else original_file(src.uri, src.kind, src.metadata or {})}


class ItemView(QWidget):
    delete_requested = Signal(int)
    open_requested = Signal(int)        # another source id (parent, derived)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("itemView")
        self.item: dict[str, Any] | None = None
        lay = QVBoxLayout(self)
        self.title = QLabel()
        self.title.setObjectName("itemTitle")
        self.title.setWordWrap(True)
        self.provenance = QLabel()
        self.provenance.setObjectName("itemProvenance")
        self.provenance.setWordWrap(True)
        self.provenance.setTextFormat(Qt.TextFormat.RichText)
        self.provenance.linkActivated.connect(lambda h: self.open_requested.emit(int(h.split(":")[1])))
        self.where = QLabel()
        self.where.setObjectName("itemWhere")
        self.where.setStyleSheet("color: #1e88e5")
        self.where.hide()
        self.text = QTextBrowser()
        self.text.setObjectName("itemText")
        row = QHBoxLayout()
        self.open_btn = QPushButton("Open original file")
        self.open_btn.setObjectName("itemOpenOriginal")
        self.open_btn.clicked.connect(self.open_original)
        self.export_btn = QPushButton("Export Markdown…")
        self.export_btn.setObjectName("itemExport")
        self.export_btn.clicked.connect(self.export_dialog)
        self.delete_btn = QPushButton("Delete…")
        self.delete_btn.setObjectName("itemDelete")
        self.delete_btn.clicked.connect(lambda: self.item and self.delete_requested.emit(self.item["source"].id))
        for b in (self.open_btn, self.export_btn, self.delete_btn):
            row.addWidget(b)
            b.setEnabled(False)   # until an item is shown
        row.addStretch(1)
        self.title.setText("<span style='color:#78909c'>Choose an item on the left to read it here.</span>")
        lay.addWidget(self.title)
        lay.addWidget(self.provenance)
        lay.addWidget(self.where)
        lay.addWidget(self.text, 1)
        lay.addLayout(row)

    def show_item(self, item: dict[str, Any], locator: dict[str, Any] | None = None,
                  chunk_id: int | None = None) -> None:
        self.item = item
        src = item["source"]
        self.title.setText(f"<b>{html.escape(src.title or Path(uris.shown(src.uri)).name)}</b> &nbsp; "
                           f"<span style='color:#78909c'>{html.escape(src.kind)} · {html.escape(src.privacy)}</span>")
        lines = [html.escape(ln) for ln in provenance_lines(src, item["chunks"], item.get("original"))]
        if item.get("machine"):
            lines.append(f"Indexed on {html.escape(item['machine'])}")
        if item["parent"] is not None:
            p = item["parent"]
            lines.append(f"Derived from <a href='src:{p.id}'>{html.escape(p.title or p.uri)}</a>")
        if item["derived"]:
            lines.append("Derived from it: " + ", ".join(
                f"<a href='src:{i}'>{html.escape(k)}: {html.escape(t)}</a>" for i, k, t in item["derived"]))
        self.provenance.setText("<br>".join(lines))
        self.text.setPlainText(item.get("display", item["text"]))
        self.delete_btn.setEnabled(True)
        self.export_btn.setEnabled(src.kind in ("note", "meeting", "minutes", "conversation", "voice_note"))
        self.go_to(locator, chunk_id)

    def show_deleted(self) -> None:
        self.item = None
        self.text.clear()
        self.title.setText("(deleted)")
        self.provenance.setText("")
        self.where.hide()
        for b in (self.open_btn, self.export_btn, self.delete_btn):
            b.setEnabled(False)

    def go_to(self, locator: dict[str, Any] | None, chunk_id: int | None = None) -> bool:
        """Scroll to and select the cited place, and say where it is: the segment at a time in a
        recording, else the chunk's text, else its lines."""
        if not self.item:
            return False
        place = describe(locator)
        self.where.setText(place)
        self.where.setVisible(bool(place))
        self._offer_original(locator)
        cursor = self._at_time(locator) if is_timed(locator) else None
        if cursor is not None:
            self.text.setTextCursor(cursor)
            self.text.ensureCursorVisible()
            return True
        target = next((c for c in self.item["chunks"] if c[0] == chunk_id), None)
        if target is None and locator:
            target = next((c for c in self.item["chunks"] if c[1] == locator), None)
        doc = self.text.document()
        cursor = None
        if target is not None:
            # Select the whole passage: from its first line to its last (find() works per line).
            lines = [ln.strip() for ln in target[2].splitlines() if ln.strip()]
            if lines:
                first = doc.find(lines[0][:120])
                if not first.isNull():
                    last = doc.find(lines[-1][:120], first.selectionStart()) if len(lines) > 1 else first
                    cursor = QTextCursor(doc)
                    cursor.setPosition(first.selectionStart())
                    end = last.selectionEnd() if not last.isNull() else first.selectionEnd()
                    cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        if cursor is None and locator and "line_start" in locator:
            first = int(locator["line_start"]) - 1
            cursor = self._blocks(first, int(locator.get("line_end", first + 1)) - 1)
        if cursor is None:
            return False
        self.text.setTextCursor(cursor)
        self.text.ensureCursorVisible()
        return True

    def _blocks(self, first: int, last: int) -> QTextCursor | None:
        """A selection of whole lines (text blocks) ``first``..``last``, counted from 0."""
        doc = self.text.document()
        a, b = doc.findBlockByNumber(max(0, first)), doc.findBlockByNumber(max(first, last))
        if not a.isValid():
            return None
        if not b.isValid():
            b = doc.lastBlock()
        cursor = QTextCursor(a)
        cursor.setPosition(b.position() + max(0, b.length() - 1), QTextCursor.MoveMode.KeepAnchor)
        return cursor

    def _at_time(self, locator: dict[str, Any]) -> QTextCursor | None:
        """The transcript lines spoken at the cited time of a voice note or meeting."""
        end = locator.get("end")
        span = timed_range(self.text.toPlainText().split("\n"), float(locator["start"]),
                           float(end) if end is not None else None)
        return self._blocks(*span) if span is not None else None

    def _offer_original(self, locator: dict[str, Any] | None) -> None:
        path = self.item.get("original") if self.item else None
        recorded = self.item is not None and self.item["source"].kind in RECORDED_KINDS
        at = "" if recorded else where_to_open(locator)
        self.open_btn.setText(("Play the recording" if recorded else "Open original file")
                              + (f" ({at})" if at else ""))
        self.open_btn.setEnabled(path is not None)
        self.open_btn.setToolTip(uris.shown(str(path)) if path is not None else "The original is not on this computer")

    def open_original(self) -> None:
        """The original file in the program the desktop opens it with."""
        path = self.item.get("original") if self.item else None
        if path is None:
            return
        command = desktop_opener(path)
        if command is None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        else:
            subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)

    def markdown(self) -> str:
        src = self.item["source"] if self.item else None
        if src is None:
            return ""
        body = self.item["text"]
        return f"# {src.title or src.kind}\n\n*{src.kind}, {when(src.created_at)}*\n\n{body}\n"

    def export_dialog(self) -> None:
        # open(), never exec(): a nested event loop would stall qasync coroutines.
        dlg = QFileDialog(self, "Export as Markdown")
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dlg.setNameFilter("Markdown (*.md)")
        dlg.setOption(QFileDialog.Option.DontUseNativeDialog)
        src = self.item["source"] if self.item else None
        dlg.selectFile(f"{(src.title or 'note') if src else 'note'}.md".replace("/", "-"))
        dlg.fileSelected.connect(self.export_to)
        dlg.open()

    def export_to(self, path: str) -> Path:
        p = Path(path)
        p.write_text(self.markdown(), encoding="utf-8")
        return p
