"""Runtimes: configured and discovered endpoints with a test button; add one; API keys to the keyring."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from deskmind.core.runtimes.kinds import RUNTIME_KINDS
from deskmind.ui.settings.routing_file import RoutingFile
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)


class RuntimesPage(QWidget):
    def __init__(self, file: RoutingFile, inventory: Callable[[], Any], workers: Workers,
                 changed: Callable[[], None], secrets: Callable[[], Any],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runtimesPage")
        self.file, self._inventory, self.workers = file, inventory, workers
        self._changed, self._secrets = changed, secrets
        lay = QVBoxLayout(self)
        self.table = QTableWidget(0, 5)
        self.table.setObjectName("runtimesTable")
        self.table.setHorizontalHeaderLabels(["Runtime", "Kind", "Zone", "State", "Models"])
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.test_btn = QPushButton("Test runtimes")
        self.test_btn.setObjectName("runtimesTest")
        self.test_btn.clicked.connect(lambda: asyncio.ensure_future(self.test()))
        row.addWidget(self.test_btn)
        row.addStretch(1)
        lay.addLayout(row)
        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setPlaceholderText("gpu-box")
        self.kind = QComboBox()
        self.kind.addItems(RUNTIME_KINDS.served())
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://gpu-box.lan:11434")
        self.zone = QComboBox()
        self.zone.addItems(["auto", "machine", "home", "cloud"])
        self.key = QLineEdit()
        self.key.setObjectName("apiKey")
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("API key (stored in the OS keyring, never in a file)")
        form.addRow("Name", self.name)
        form.addRow("Kind", self.kind)
        form.addRow("URL", self.url)
        form.addRow("Zone", self.zone)
        form.addRow("API key", self.key)
        lay.addLayout(form)
        self.add_btn = QPushButton("Add runtime")
        self.add_btn.setObjectName("runtimesAdd")
        self.add_btn.clicked.connect(self.add)
        lay.addWidget(self.add_btn)
        self.status = QLabel()
        self.status.setObjectName("runtimesStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.show_configured()

    def show_configured(self) -> None:
        cfg, err = self.file.validate(self.file.text())
        if cfg is None:
            self.status.setText(err or "")
            return
        self._fill([(p.name, p.kind, p.zone, "not tested", ", ".join(p.models)) for p in cfg.providers.values()])

    def _fill(self, rows: list[tuple[str, ...]]) -> None:
        self.table.setRowCount(len(rows))
        for r, vals in enumerate(rows):
            for c, v in enumerate(vals):
                self.table.setItem(r, c, QTableWidgetItem(v))

    async def test(self) -> Any:
        self.status.setText("Testing…")
        try:
            inv = await self._inventory(refresh=True)
        except Exception as exc:
            self.status.setText(f"Test failed: {exc}")
            return None
        self._fill([(s.name, s.kind, s.zone, ("✔ answering" if s.available else "✘ ") + (f" {s.note}" if s.note else ""),
                     ", ".join(s.models[:6])) for s in inv.providers.values()])
        up = sum(1 for s in inv.providers.values() if s.available)
        self.status.setText(f"{up} of {len(inv.providers)} runtime(s) answering" if inv.providers
                            else "No runtime found: start Ollama or LM Studio, or add one below.")
        return inv

    def add(self) -> bool:
        name = self.name.text().strip()
        if not name or not self.url.text().strip():
            self.status.setText("A runtime needs a name and a URL.")
            return False
        values: dict[str, Any] = {"kind": self.kind.currentText(), "url": self.url.text().strip()}
        if self.zone.currentText() != "auto":
            values["zone"] = self.zone.currentText()
        secret = self.key.text()
        if secret:
            values["key"] = name
        try:
            self.file.set_table("providers", name, values)
        except ValueError as exc:
            self.status.setText(f"Not added: {exc}")
            return False
        self.key.clear()   # the key leaves the widget at once
        if secret:
            # The keyring may be slow or prompt: on its own executor, never the GUI thread.
            self.workers.submit(lambda: self._secrets().set(name, secret), executor=self.workers.secrets,
                                done=lambda _r: self.status.setText(f"Added {name}; its key is in the keyring"),
                                failed=lambda e: self.status.setText(f"Added {name}, but the key was not stored: {e}"))
        else:
            self.status.setText(f"Added {name}")
        self._changed()
        self.show_configured()
        return True
