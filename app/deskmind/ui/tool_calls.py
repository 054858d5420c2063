"""The palette's strip of tool calls: each call with its status, and an approval asked inline.

An approval is a row of buttons inside the palette, not a modal dialog: the answer's loop
awaits a future the buttons resolve, so the GUI stays live, Esc still cancels, and a question
left unanswered is denied after a timeout.
"""

from __future__ import annotations

import asyncio
import html
import logging
from typing import Any

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

log = logging.getLogger(__name__)

APPROVAL_TIMEOUT_S = 120.0
MARKS = {"allowed": ("✓", "#2e7d32"), "approved": ("✓", "#2e7d32"), "denied": ("✗", "#c62828"),
         "refused": ("✗", "#c62828"), "failed": ("!", "#ef6c00"), "error": ("!", "#ef6c00"),
         "waiting": ("…", "#1565c0")}


def tool_label(name: str) -> str:
    """``server__tool`` as the person knows it: ``server/tool``."""
    return name.replace("__", "/", 1)


class ToolCallsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None, timeout_s: float = APPROVAL_TIMEOUT_S) -> None:
        super().__init__(parent)
        self.setObjectName("paletteTools")
        self.timeout_s = timeout_s
        self.calls: list[dict[str, Any]] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.list = QLabel()
        self.list.setObjectName("paletteToolList")
        self.list.setWordWrap(True)
        lay.addWidget(self.list)
        self.approval = QFrame()
        self.approval.setObjectName("paletteApproval")
        self.approval.setStyleSheet("#paletteApproval { border: 1px solid #1565c0; border-radius: 6px; }")
        row = QHBoxLayout(self.approval)
        self.question = QLabel()
        self.question.setObjectName("paletteApprovalText")
        self.question.setWordWrap(True)
        row.addWidget(self.question, 1)
        self.allow_btn = QPushButton("Allow once")
        self.allow_btn.setObjectName("approveOnce")
        self.always_btn = QPushButton("Always for this agent")
        self.always_btn.setObjectName("approveAlways")
        self.deny_btn = QPushButton("Deny")
        self.deny_btn.setObjectName("approveDeny")
        for b in (self.allow_btn, self.always_btn, self.deny_btn):
            row.addWidget(b)
        lay.addWidget(self.approval)
        self.approval.hide()
        self._pending: asyncio.Future | None = None
        self.allow_btn.clicked.connect(lambda: self._answer(True))
        self.always_btn.clicked.connect(lambda: self._answer("always"))
        self.deny_btn.clicked.connect(lambda: self._answer(False))
        self.hide()

    def clear(self) -> None:
        self._answer(False)
        self.calls = []
        self.list.setText("")
        self.hide()

    def add(self, data: dict[str, Any]) -> None:
        self.calls.append(dict(data))
        self._render()

    def _render(self) -> None:
        rows = []
        for c in self.calls:
            mark, color = MARKS.get(c.get("decision", ""), ("•", "#607d8b"))
            detail = c.get("detail") or ""
            if detail.startswith(("REFUSED: ", "FAILED: ")):
                detail = detail.split(": ", 1)[1]
            detail = detail.split(". Do not retry")[0].split("\n")[0][:140]
            rows.append(f"<span style='color:{color}'>{mark}</span> <b>{html.escape(tool_label(c.get('tool', '')))}</b> "
                        f"<span style='color:{color}'>{html.escape(c.get('decision', ''))}</span>"
                        + (f" <span style='color:#78909c'>— {html.escape(detail)}</span>" if detail else ""))
        self.list.setText("Tools: " + "<br>".join(rows) if rows else "")
        self.setVisible(bool(rows) or self.approval.isVisible())

    async def ask(self, req: Any) -> Any:
        """GUI thread: show the question inline and wait for a button (True, "always" or False);
        no answer within the timeout, or the panel cleared, means no."""
        self._answer(False)  # one question at a time
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending = fut
        d = req.details or {}
        what = (f"{d.get('server')}/{d.get('tool')} ({d.get('kind')})" if d.get("tool") else req.action)
        said = req.summary.split(" with ", 1)[1] if d.get("tool") and " with " in req.summary else req.summary
        self.question.setText(f"<b>{html.escape(req.agent)}</b> wants to call <b>{html.escape(what)}</b> "
                              f"with {html.escape(said[:300])}" if d.get("tool") else
                              f"<b>{html.escape(req.agent)}</b> wants to {html.escape(said[:300])}")
        self.always_btn.setVisible(bool(d.get("can_always")))
        self.approval.show()
        self.show()
        self.deny_btn.setFocus()
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout_s)
        except asyncio.TimeoutError:
            return False
        finally:
            if self._pending is fut:
                self._pending = None
            self.approval.hide()
            self._render()

    def _answer(self, value: Any) -> None:
        fut, self._pending = self._pending, None
        if fut is not None and not fut.done():
            fut.set_result(value)
