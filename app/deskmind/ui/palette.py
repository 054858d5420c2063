"""The quick-ask palette: type, get a streamed, cited answer; Esc to cancel or hide.

Built once at start and kept hidden, so the hotkey only has to move and show it. The answer
streams from an :class:`~deskmind.ui.answers.Answerer` as an asyncio task on the GUI loop
(qasync); Esc cancels that task, which closes the runtime's HTTP stream.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from typing import Any, Callable

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QGuiApplication, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QTextBrowser,
                               QVBoxLayout, QWidget)

from deskmind.core.errors import DeskmindError
from deskmind.ui.answers import (UNGROUNDED_NOTE, Answerer, AskEvent, Citation, RouteInfo, Turn,
                                 mark_unsupported)
from deskmind.ui.drops import accept_files, take_files

log = logging.getLogger(__name__)

RENDER_EVERY_MS = 33   # re-render Markdown at most ~30 times a second while tokens stream


def locator_text(loc: dict[str, Any]) -> str:
    parts = []
    if "page" in loc:
        parts.append(f"p. {loc['page']}")
    if "start" in loc:
        s = int(loc["start"])
        parts.append(f"{s // 60}:{s % 60:02d}")
    if "line_start" in loc:
        parts.append(f"line {loc['line_start']}")
    if loc.get("heading"):
        parts.append(" › ".join(loc["heading"]))
    return ", ".join(parts)


def _md_escape(text: str) -> str:
    """A typed question shown as text, not Markdown (a '#' or '*' in it stays as typed)."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!<>|" else ch for ch in text)


EMPTY_MEMORY_HINT = ("Your memory is empty. Drop a folder or files here to index them, or hold "
                     "the note hotkey and speak a note: answers come from what you add.")


class Palette(QWidget):
    citation_opened = Signal(object)       # Citation
    files_dropped = Signal(list)           # [path]
    paste_requested = Signal(str)
    answer_finished = Signal(str)

    def __init__(self, answerer: Answerer,
                 can_paste: Callable[[], bool] = lambda: False, history_size: int = 50,
                 memory_empty: Callable[[Callable[[bool], None]], None] = lambda reply: reply(False),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint
                         | Qt.WindowType.WindowStaysOnTopHint)
        self.setObjectName("palette")
        self.setWindowTitle("Deskmind")
        self.setAcceptDrops(True)
        self.answerer = answerer
        self.can_paste = can_paste
        self.memory_empty = memory_empty
        self.history: list[str] = []
        self.history_size = history_size
        self._hist_pos = 0
        self.conversation: list[Turn] = []
        self.citations: list[Citation] = []
        self.route: RouteInfo | None = None
        self.answer = ""
        self.unsupported: list[str] = []   # sentences of the answer no passage backs
        self.grounded = True               # False: the answer is the model's own knowledge
        self.task: asyncio.Task | None = None
        self.shown_at = 0.0
        self.painted_at = 0.0
        self._await_paint = False
        self._dirty = False
        self._question = ""
        self._earlier: list[Turn] = []

        frame = QFrame(self)
        frame.setObjectName("paletteFrame")
        frame.setStyleSheet("#paletteFrame { background: palette(window); border: 1px solid #607d8b;"
                            " border-radius: 10px; }")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(frame)
        lay = QVBoxLayout(frame)
        self.input = QLineEdit()
        self.input.setObjectName("paletteInput")
        self.input.setPlaceholderText("Ask your memory…  (Enter to ask, Esc to close, ↑ for history)")
        f = self.input.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        self.input.setFont(f)
        self.input.returnPressed.connect(self.submit)
        self.input.installEventFilter(self)
        lay.addWidget(self.input)
        self.route_label = QLabel()
        self.route_label.setObjectName("paletteRoute")
        self.route_label.setTextFormat(Qt.TextFormat.RichText)
        self.route_label.linkActivated.connect(self._route_clicked)
        self.route_detail = QLabel()
        self.route_detail.setObjectName("paletteRouteDetail")
        self.route_detail.setWordWrap(True)
        self.route_detail.hide()
        lay.addWidget(self.route_label)
        lay.addWidget(self.route_detail)
        from deskmind.ui.tool_calls import ToolCallsPanel

        self.tools = ToolCallsPanel()
        lay.addWidget(self.tools)
        self.view = QTextBrowser()
        self.view.setObjectName("paletteAnswer")
        self.view.setOpenLinks(False)
        self.view.anchorClicked.connect(lambda url: self._cite_clicked(url.toString()))
        self.view.setMinimumHeight(220)
        lay.addWidget(self.view, 1)
        self.cites_label = QLabel()
        self.cites_label.setObjectName("paletteCitations")
        self.cites_label.setWordWrap(True)
        self.cites_label.setTextFormat(Qt.TextFormat.RichText)
        self.cites_label.linkActivated.connect(self._cite_clicked)
        lay.addWidget(self.cites_label)
        self.evidence_label = QLabel()
        self.evidence_label.setObjectName("paletteEvidence")
        self.evidence_label.setWordWrap(True)
        self.evidence_label.setTextFormat(Qt.TextFormat.RichText)
        self.evidence_label.hide()
        lay.addWidget(self.evidence_label)
        row = QHBoxLayout()
        self.status = QLabel()
        self.status.setObjectName("paletteStatus")
        self.status.setWordWrap(True)
        row.addWidget(self.status, 1)
        self.copy_btn = QPushButton("Copy")
        self.copy_btn.setObjectName("paletteCopy")
        self.copy_btn.clicked.connect(self.copy_answer)
        self.paste_btn = QPushButton("Paste into app")
        self.paste_btn.setObjectName("palettePaste")
        self.paste_btn.clicked.connect(lambda: self.paste_requested.emit(self.answer))
        self.new_btn = QPushButton("New")
        self.new_btn.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_btn.clicked.connect(self.new_conversation)
        for b in (self.new_btn, self.copy_btn, self.paste_btn):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            row.addWidget(b)
        lay.addLayout(row)
        QShortcut(QKeySequence("Ctrl+N"), self, self.new_conversation)
        QShortcut(QKeySequence("Ctrl+Shift+C"), self, self.copy_answer)
        self._render_timer = QTimer(self)
        self._render_timer.setInterval(RENDER_EVERY_MS)
        self._render_timer.timeout.connect(self._render)
        self.resize(680, 420)
        self.update_buttons()

    # -- showing ---------------------------------------------------------------------------

    def paintEvent(self, event: Any) -> None:
        super().paintEvent(event)
        if self._await_paint:
            # Wall clock, so a benchmark in another process can compare with its key press.
            self.painted_at = time.time()
            self._await_paint = False

    def show_palette(self) -> None:
        """Show on the screen under the cursor with focus in the input. GUI thread."""
        self.shown_at = time.perf_counter()
        self._await_paint = not self.isVisible()
        screen = QGuiApplication.screenAt(QCursor.pos()) or QGuiApplication.primaryScreen()
        geo = screen.availableGeometry()
        self.move(QPoint(geo.x() + (geo.width() - self.width()) // 2, geo.y() + geo.height() // 5))
        self.show()
        self.raise_()
        self.activateWindow()
        self.input.setFocus(Qt.FocusReason.ActiveWindowFocusReason)
        self.input.selectAll()
        self._show_empty_state()

    def _show_empty_state(self) -> None:
        """With nothing in memory yet, say how to fill it instead of showing a blank window.

        ``memory_empty(reply)`` asks; ``reply(empty)`` comes later on the GUI thread (the
        answer is read from the database, which the GUI thread never touches)."""
        if self.conversation or self.streaming:
            return
        try:
            self.memory_empty(self._memory_empty_known)
        except Exception:  # a hint must never stop the palette from opening
            log.debug("cannot tell whether memory is empty", exc_info=True)

    def _memory_empty_known(self, empty: bool) -> None:
        if self.conversation or self.streaming:
            return
        if empty:
            self.status.setText(EMPTY_MEMORY_HINT)
        elif self.status.text() == EMPTY_MEMORY_HINT:
            self.status.setText("")

    def toggle(self) -> None:
        if self.isVisible() and self.isActiveWindow():
            self.hide()
        else:
            self.show_palette()

    # -- keys ------------------------------------------------------------------------------

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.input and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key == Qt.Key.Key_Escape:
                self.escape()
                return True
            if key in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.history:
                step = -1 if key == Qt.Key.Key_Up else 1
                self._hist_pos = max(0, min(len(self.history), self._hist_pos + step))
                self.input.setText(self.history[self._hist_pos] if self._hist_pos < len(self.history) else "")
                return True
        return super().eventFilter(obj, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.escape()
        else:
            super().keyPressEvent(event)

    def escape(self) -> None:
        """Esc: cancel a running answer, else hide."""
        if self.streaming:
            self.cancel()
        else:
            self.hide()

    # -- asking ----------------------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return self.task is not None and not self.task.done()

    def submit(self) -> None:
        q = self.input.text().strip()
        if not q:
            return
        if self.streaming:
            self.cancel()
        if not self.history or self.history[-1] != q:
            self.history.append(q)
            del self.history[:-self.history_size]
        self._hist_pos = len(self.history)
        self.input.clear()
        self.ask(q)

    def ask(self, question: str) -> asyncio.Task:
        self.task = asyncio.ensure_future(self._run(question))
        return self.task

    def cancel(self) -> None:
        self.tools.clear()  # a pending approval is denied, never left hanging
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _run(self, question: str) -> None:
        self.answer, self.citations, self.route = "", [], None
        self.unsupported, self.grounded = [], True
        self.route_label.setText("")
        self.route_detail.hide()
        self.cites_label.setText("")
        self.evidence_label.hide()
        self.tools.clear()
        self._question = question
        self._dirty = True  # the question shows at once, even while a tool or an approval waits
        self._earlier = list(self.conversation)
        self.status.setText("Thinking…")
        self._render_timer.start()
        history = list(self.conversation)
        try:
            await self._consume(self.answerer.stream(question, history))
            self.conversation.append((question, self.answer))
            self.status.setText(f"Answered in {self._elapsed()}")
            self.answer_finished.emit(self.answer)
        except asyncio.CancelledError:
            self.status.setText("Cancelled")
            self.answer += "\n\n*(cancelled)*"
        except DeskmindError as exc:
            self.status.setText("")
            self.answer += f"\n\n**Could not answer:** {exc}"
        except Exception as exc:  # keep the palette usable whatever a runtime does
            log.exception("asking failed")
            self.answer += f"\n\n**Something went wrong:** {exc}"
        finally:
            self._render_timer.stop()
            self._dirty = True
            self._render()
            self.update_buttons()

    async def _consume(self, events: Any) -> None:
        self._t0 = time.perf_counter()
        async for ev in events:
            self.on_event(ev)

    def on_event(self, ev: AskEvent) -> None:
        if ev.kind == "token":
            self.answer += ev.text
            self._dirty = True
            if self.status.text() == "Thinking…":
                self.status.setText("Answering…")
        elif ev.kind == "route" and ev.route:
            self.route = ev.route
            r = ev.route
            self.route_label.setText(
                f"<span style='color:#607d8b'>{html.escape(r.zone)} · {html.escape(r.model)}</span> "
                f"<a href='route'>why?</a>")
            self.route_detail.setText(
                f"Zone: {r.zone}. Runtime: {r.provider or '—'}. Model: {r.model}. "
                f"Rule: {r.rule or '—'}. {r.reason}")
        elif ev.kind == "citations":
            self.citations = list(ev.citations)
            self._show_citations()
        elif ev.kind == "notice":
            self.status.setText(ev.text)
        elif ev.kind == "done" and "answer" in ev.data:
            # The final answer: cut where it began repeating, checked against the passages.
            self.answer = ev.data["answer"]
            self.unsupported = list(ev.data.get("unsupported") or [])
            self.grounded = bool(ev.data.get("grounded")) or bool(ev.data.get("abstained"))
            self._dirty = True
        elif ev.kind == "tool":
            self.tools.add(ev.data)
            self.status.setText(f"Tool {ev.data.get('tool', '').replace('__', '/', 1)}: {ev.data.get('decision')}")

    def approve_inline(self, req: Any) -> Any:
        """An approval asked inside the palette while it is answering (an awaitable), else None."""
        if not (self.isVisible() and self.streaming):
            return None
        return self.tools.ask(req)

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - getattr(self, '_t0', time.perf_counter()):.1f} s"

    def _render(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        conv = "".join(f"**{_md_escape(q)}**\n\n{a}\n\n---\n\n" for q, a in self._earlier)
        shown = mark_unsupported(self.answer, self.unsupported) if self.grounded else (
            f"{self.answer}\n\n*{UNGROUNDED_NOTE}*")
        self.view.setMarkdown(conv + f"**{_md_escape(self._question)}**\n\n" + shown)
        sb = self.view.verticalScrollBar()
        sb.setValue(sb.maximum())

    def _show_citations(self) -> None:
        if not self.citations:
            self.cites_label.setText("")
            self.evidence_label.setText("")
            self.evidence_label.hide()
            return
        links = []
        for c in self.citations:
            name = html.escape(c.title or c.source.rsplit("/", 1)[-1])
            where = locator_text(c.locator)
            links.append(f"<a href='cite:{c.n}'>[{c.n}] {name}</a>"
                         + (f" <span style='color:#78909c'>({html.escape(where)})</span>" if where else ""))
        self.cites_label.setText("Sources: " + " &nbsp; ".join(links))
        # What to read to check the answer at a glance: each source's backing sentences.
        lines = [f"[{c.n}] <i>“{html.escape(c.evidence)}”</i>" for c in self.citations if c.evidence]
        self.evidence_label.setText("<br>".join(lines))
        self.evidence_label.setVisible(bool(lines))

    def _cite_clicked(self, href: str) -> None:
        if href.startswith("cite:"):
            n = int(href[5:])
            for c in self.citations:
                if c.n == n:
                    self.citation_opened.emit(c)
                    return

    def _route_clicked(self, _href: str) -> None:
        self.route_detail.setVisible(not self.route_detail.isVisible())

    def new_conversation(self) -> None:
        self.cancel()
        self.conversation.clear()
        self.answer, self.citations, self._question, self._earlier = "", [], "", []
        self.view.clear()
        self.cites_label.setText("")
        self.evidence_label.hide()
        self.route_label.setText("")
        self.tools.clear()
        self.status.setText("New conversation")
        self.update_buttons()

    def copy_answer(self) -> None:
        if self.answer:
            QGuiApplication.clipboard().setText(self.answer)
            self.status.setText("Copied")

    def update_buttons(self) -> None:
        """Copy and Paste follow the answer and what the quick-ask agent may do."""
        has = bool(self.answer)
        self.copy_btn.setEnabled(has)
        allowed = self.can_paste()
        self.paste_btn.setEnabled(has and allowed)
        self.paste_btn.setToolTip("" if allowed else
                                  "The quick-ask agent may not paste into other apps "
                                  "(Settings → Agents to allow it)")

    # -- drops -----------------------------------------------------------------------------

    def dragEnterEvent(self, event: Any) -> None:
        accept_files(event)

    def dropEvent(self, event: Any) -> None:
        if paths := take_files(event):
            self.status.setText(f"Indexing {len(paths)} item(s)…")
            self.files_dropped.emit(paths)

    def indexing_done(self, summary: dict) -> None:
        self.status.setText(f"Indexed {summary.get('indexed', 0)}, unchanged {summary.get('unchanged', 0)}, "
                            f"failed {summary.get('failed', 0)}: ask about them now")
