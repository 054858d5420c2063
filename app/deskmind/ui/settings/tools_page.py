"""Tools: the MCP servers agents may use, each server's tools with their annotations, the
person's own classification, and per-agent grants (nothing granted by default)."""

from __future__ import annotations

import asyncio
import logging
import shlex
from pathlib import Path
from typing import Any, Callable

from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QListWidget, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from deskmind.core.errors import DeskmindError
from deskmind.core.memory.models import PRIVACY_LEVELS
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)

AGENTS = ("quick-ask", "dictation", "meeting-minutes")
GRANT_CHOICES = ("not granted", "allow", "always")
ANNOTATIONS = (("read_only", "read-only"), ("destructive", "destructive"),
               ("idempotent", "idempotent"), ("open_world", "open-world"))


def _list_tools(cfg: Any, server: str, log_dir: Path, secrets_executor: Any = None) -> list[Any]:
    """Worker thread: start the server on a loop of its own, list its tools, stop it (its
    token is read on ``secrets_executor``, the keyring thread)."""
    from deskmind.core.tools.registry import ToolServers

    async def main() -> list[Any]:
        servers = ToolServers(cfg, log_dir=log_dir, secrets=_secret_store(), secrets_executor=secrets_executor)
        try:
            return await servers.tools(server)
        finally:
            await servers.aclose()

    return asyncio.run(main())


def _secret_store() -> Any:
    from deskmind.core.secrets import SecretStore

    return SecretStore()


class ToolsPage(QWidget):
    def __init__(self, config_dir: Path, log_dir: Path, workers: Workers, changed: Callable[[], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolsPage")
        self.config_dir, self.log_dir, self.workers, self._changed = config_dir, log_dir, workers, changed
        self.cfg: Any = None
        self.listed: dict[str, list[Any]] = {}
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("MCP servers your agents may use. Nothing is granted until you say so; "
                             "read-only tools then run at once, the others ask you each time "
                             "unless granted “always”."))
        top = QHBoxLayout()
        self.servers = QListWidget()
        self.servers.setObjectName("toolServers")
        self.servers.setMaximumWidth(200)
        self.servers.currentTextChanged.connect(self._selected)
        top.addWidget(self.servers)
        right = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(QLabel("Agent:"))
        self.agent = QComboBox()
        self.agent.setObjectName("toolsAgent")
        self.agent.setEditable(True)  # gateway clients are agents too
        self.agent.addItems(AGENTS)
        self.agent.currentTextChanged.connect(lambda _t: self._fill_tools())
        row.addWidget(self.agent, 1)
        self.test_btn = QPushButton("List tools")
        self.test_btn.setObjectName("toolsTest")
        self.test_btn.clicked.connect(self.test_selected)
        row.addWidget(self.test_btn)
        self.remove_btn = QPushButton("Remove")
        self.remove_btn.setObjectName("toolsRemove")
        self.remove_btn.clicked.connect(self.remove_selected)
        row.addWidget(self.remove_btn)
        right.addLayout(row)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("toolsTable")
        self.table.setHorizontalHeaderLabels(["Tool", "Annotations", "Treat as", "Grant"])
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        right.addWidget(self.table, 1)
        top.addLayout(right, 1)
        lay.addLayout(top, 1)
        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setObjectName("toolsName")
        self.name.setPlaceholderText("notes")
        self.transport = QComboBox()
        self.transport.addItems(["stdio", "http"])
        self.target = QLineEdit()
        self.target.setObjectName("toolsTarget")
        self.target.setPlaceholderText("npx @modelcontextprotocol/server-filesystem ~/notes   or   https://host/mcp")
        self.privacy = QComboBox()
        self.privacy.addItems(list(PRIVACY_LEVELS))
        self.privacy.setCurrentText("private")
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("bearer token of an HTTP server (kept in the OS keyring)")
        form.addRow("Name", self.name)
        form.addRow("Transport", self.transport)
        form.addRow("Command or URL", self.target)
        form.addRow("Results count as", self.privacy)
        form.addRow("Token", self.token)
        lay.addLayout(form)
        self.add_btn = QPushButton("Add server")
        self.add_btn.setObjectName("toolsAdd")
        self.add_btn.clicked.connect(self.add_server)
        lay.addWidget(self.add_btn)
        self.status = QLabel()
        self.status.setObjectName("toolsStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.reload()

    # -- the file ------------------------------------------------------------------------

    def reload(self) -> None:
        from deskmind.core.tools.config import ToolsConfig, load_tools

        try:
            self.cfg = load_tools(self.config_dir)
        except DeskmindError as exc:
            self.cfg = ToolsConfig()
            self.status.setText(f"tools.toml could not be read: {exc}")
        current = self.servers.currentItem().text() if self.servers.currentItem() else None
        self.servers.clear()
        self.servers.addItems(list(self.cfg.servers))
        if self.cfg.servers:
            names = list(self.cfg.servers)
            self.servers.setCurrentRow(names.index(current) if current in names else 0)
        self._fill_tools()

    def _save(self, message: str) -> None:
        from deskmind.core.tools.config import save_tools

        try:
            save_tools(self.cfg, self.config_dir)
        except (DeskmindError, OSError) as exc:
            self.status.setText(f"Not saved: {exc}")
            return
        self.status.setText(message)
        self._changed()

    # -- servers -------------------------------------------------------------------------

    def add_server(self) -> None:
        from deskmind.core.tools.config import parse_server

        name, target = self.name.text().strip(), self.target.text().strip()
        d: dict[str, Any] = {"transport": self.transport.currentText(), "privacy": self.privacy.currentText()}
        try:
            if d["transport"] == "http":
                d["url"] = target
            else:
                words = shlex.split(target)
                d.update(command=words[0] if words else "", args=words[1:])
            spec = parse_server(name, d, "the form")
        except (DeskmindError, ValueError) as exc:
            self.status.setText(f"Not added: {exc}")
            return
        if name in self.cfg.servers:
            self.status.setText(f"Not added: a server named {name} exists (remove it first)")
            return
        token = self.token.text().strip()
        self.token.clear()
        if token and spec.transport == "http":
            self.workers.submit(lambda: _secret_store().set(spec.secret_name, token),
                                failed=lambda e: self.status.setText(f"The token was not stored: {e}"))
        self.cfg.servers[name] = spec
        self._save(f"Added {name}. Grant its tools to an agent below.")
        self.reload()
        self.servers.setCurrentRow(list(self.cfg.servers).index(name))
        self.test_selected()

    def remove_selected(self) -> None:
        item = self.servers.currentItem()
        if item is None:
            return
        name = item.text()
        spec = self.cfg.servers.pop(name, None)
        for per in self.cfg.grants.values():
            per.pop(name, None)
        self.listed.pop(name, None)
        if spec is not None and spec.transport == "http":
            self.workers.submit(lambda: _secret_store().delete(spec.secret_name))
        self._save(f"Removed {name} and its grants.")
        self.reload()

    def _selected(self, _name: str) -> None:
        self._fill_tools()

    def test_selected(self) -> None:
        item = self.servers.currentItem()
        if item is None:
            return
        name = item.text()
        self.status.setText(f"Starting {name}…")
        self.test_btn.setEnabled(False)

        def done(tools: list[Any]) -> None:
            self.test_btn.setEnabled(True)
            self.listed[name] = tools
            self.status.setText(f"{name}: {len(tools)} tools")
            self._fill_tools()

        def failed(exc: BaseException) -> None:
            self.test_btn.setEnabled(True)
            self.status.setText(str(exc))

        self.workers.submit(_list_tools, self.cfg, name, self.log_dir, self.workers.secrets,
                            done=done, failed=failed)

    # -- tools and grants ----------------------------------------------------------------

    def _fill_tools(self) -> None:
        item = self.servers.currentItem()
        server = item.text() if item else None
        tools = self.listed.get(server or "", [])
        self.table.setRowCount(len(tools) + (1 if server else 0))
        if not server:
            return
        agent = self.agent.currentText().strip()
        rows = [("*", "every tool of this server", None)] + [(t.name, t, t) for t in tools]
        for r, (name, info, t) in enumerate(rows):
            label = QTableWidgetItem(name if name != "*" else "(every tool)")
            label.setToolTip(t.description if t else "")
            self.table.setItem(r, 0, label)
            if t is not None:
                hints = ", ".join(lbl for key, lbl in ANNOTATIONS if getattr(t, key)) or "no hints"
                self.table.setItem(r, 1, QTableWidgetItem(f"{hints} — {t.description.splitlines()[0][:80] if t.description else ''}"))
                kind = QComboBox()
                kind.setObjectName(f"kind_{name}")
                from deskmind.core.tools.config import KINDS

                kind.addItems(["as annotated", *KINDS])
                kind.setCurrentText(self.cfg.servers[server].classify.get(name, "as annotated"))
                kind.setToolTip(f"the server's annotations make it {t.kind if not t.overridden else 'see above'}")
                kind.currentTextChanged.connect(lambda v, s=server, n=name: self.set_kind(s, n, v))
                self.table.setCellWidget(r, 2, kind)
            else:
                self.table.setItem(r, 1, QTableWidgetItem(str(info)))
            grant = QComboBox()
            grant.setObjectName(f"grant_{name}")
            grant.addItems(list(GRANT_CHOICES))
            current = self.cfg.grants.get(agent, {}).get(server, {}).get(name)
            grant.setCurrentText(current or "not granted")
            grant.currentTextChanged.connect(lambda v, s=server, n=name: self.set_grant(s, n, v))
            self.table.setCellWidget(r, 3, grant)
        self.table.resizeColumnToContents(0)

    def set_grant(self, server: str, tool: str, value: str) -> None:
        agent = self.agent.currentText().strip()
        try:
            self.cfg.set_grant(agent, server, tool, None if value == "not granted" else value)
        except DeskmindError as exc:
            self.status.setText(f"Not saved: {exc}")
            return
        what = "every tool" if tool == "*" else tool
        self._save(f"{agent}: {what} of {server} " + ("not granted" if value == "not granted" else f"granted ({value})"))

    def set_kind(self, server: str, tool: str, value: str) -> None:
        spec = self.cfg.servers[server]
        if value == "as annotated":
            spec.classify.pop(tool, None)
        else:
            spec.classify[tool] = value
        self._save(f"{server}/{tool} treated as {value}")
