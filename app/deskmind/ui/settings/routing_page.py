"""Routing rules: edit routing.toml with live validation, and test a prompt against it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QPushButton, QVBoxLayout, QWidget)

from deskmind.ui.settings.routing_file import RoutingFile

log = logging.getLogger(__name__)


def explain(decision: Any) -> str:
    lines = [f"Rule: {decision.rule} — {decision.reason}",
             f"Class: {decision.klass}; privacy: {decision.privacy}; ~{decision.context_tokens} tokens"]
    for i, c in enumerate(decision.candidates, 1):
        lines.append(f"  {i}. {c.ref} ({c.zone}, {c.origin})"
                     + (f", withholds {len(c.withheld)} item(s)" if c.withheld else ""))
    if not decision.candidates:
        lines.append("  No model may answer this.")
    lines += [f"  skipped: {s}" for s in decision.skipped[:8]]
    return "\n".join(lines)


class RoutingPage(QWidget):
    def __init__(self, file: RoutingFile, inventory: Callable[[], Any], changed: Callable[[], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("routingPage")
        self.file, self._inventory, self._changed = file, inventory, changed
        lay = QVBoxLayout(self)
        self.where = QLabel(f"Rules file: {file.path}")
        lay.addWidget(self.where)
        self.editor = QPlainTextEdit()
        self.editor.setObjectName("routingEditor")
        self.editor.setFont(QFont("monospace"))
        self.editor.setPlainText(file.text())
        lay.addWidget(self.editor, 1)
        self.verdict = QLabel()
        self.verdict.setObjectName("routingVerdict")
        self.verdict.setWordWrap(True)
        lay.addWidget(self.verdict)
        row = QHBoxLayout()
        self.save_btn = QPushButton("Save rules")
        self.save_btn.setObjectName("routingSave")
        self.save_btn.clicked.connect(self.save)
        row.addWidget(self.save_btn)
        row.addStretch(1)
        lay.addLayout(row)
        test = QHBoxLayout()
        self.prompt = QLineEdit()
        self.prompt.setObjectName("routingPrompt")
        self.prompt.setPlaceholderText("Test a prompt: which rule, which model, what is withheld")
        self.task = QComboBox()
        self.task.addItems(["ask", "clean-note", "clean-dictation", "meeting-minutes", "code"])
        self.privacy = QComboBox()
        self.privacy.addItems(["private", "public", "personal", "secret"])
        self.test_btn = QPushButton("Explain")
        self.test_btn.setObjectName("routingExplain")
        self.test_btn.clicked.connect(lambda: asyncio.ensure_future(self.explain()))
        for w in (self.prompt, self.task, self.privacy, self.test_btn):
            test.addWidget(w)
        lay.addLayout(test)
        self.explanation = QLabel()
        self.explanation.setObjectName("routingExplanation")
        self.explanation.setWordWrap(True)
        lay.addWidget(self.explanation)
        self._check = QTimer(self, singleShot=True, interval=250)
        self._check.timeout.connect(self.validate)
        self.editor.textChanged.connect(self._check.start)
        self.validate()

    def validate(self) -> Any:
        cfg, err = self.file.validate(self.editor.toPlainText())
        self.save_btn.setEnabled(err is None)
        self.verdict.setText("✔ valid" if err is None else f"✘ {err}")
        self.verdict.setStyleSheet("color: #2e7d32" if err is None else "color: #c62828")
        return cfg

    def save(self) -> bool:
        try:
            self.file.save_text(self.editor.toPlainText())
        except ValueError as exc:
            self.verdict.setText(f"✘ {exc}")
            return False
        self.verdict.setText(f"✔ saved to {self.file.path}; used from the next question")
        self._changed()
        return True

    async def explain(self) -> str:
        from deskmind.core.routing.router import RouteRequest, route_request

        cfg = self.validate()
        if cfg is None:
            self.explanation.setText("Fix the rules first.")
            return ""
        try:
            inv = await self._inventory()
            d = route_request(cfg, inv, RouteRequest(prompt=self.prompt.text() or "test",
                                                     task=self.task.currentText(),
                                                     prompt_privacy=self.privacy.currentText()))
            text = explain(d)
        except Exception as exc:  # an explanation must never take settings down
            text = f"Could not explain: {exc}"
        self.explanation.setText(text)
        return text
