"""Gateway: the outside programs allowed in (MCP hosts, API callers), their permissions and
tokens, and whether the tray app itself serves MCP and the OpenAI-compatible API.

Every grant, revoke and token change goes through the core's client registry in a worker (it
writes the memory database) and applies at once, to a server this app runs as to
``deskmind serve``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)

READ_LEVELS = ("none", "public", "personal", "private", "secret")
FLAGS = (("write", "save notes"), ("ask", "use models"), ("cloud", "cloud models"),
         ("ground", "memory in chats"))
COLUMNS = ["Client", "Status", "Reads up to", *[label for _k, label in FLAGS], "Token", "Last seen"]


def limits_text(cfg: Any) -> str:
    """What one program may hold of the gateway, in words (``cfg``: the ``[gateway]`` settings)."""
    per_peer = min(cfg.max_connections_per_peer, cfg.max_connections)
    return (f"Limits: {cfg.max_connections:,} connections ({per_peer:,} from one "
            f"address; past them the one idle the longest is closed); {cfg.max_in_flight:,} requests "
            f"answered at once, {cfg.max_in_flight_per_client:,} for one client; "
            f"{cfg.mcp_sessions_per_client:,} MCP sessions per client, closed after "
            f"{cfg.mcp_session_idle_s:g} s unused; a request head within {cfg.header_timeout_s:g} s "
            f"({cfg.keep_alive_s:g} s between requests), its body within {cfg.body_timeout_s:g} s and "
            f"{cfg.max_body_kb:,} KiB. Set in settings.toml, [gateway] (see docs/gateway.md, "
            "\u201cLimits\u201d); a running server applies them when it starts.")


class GatewayPage(QWidget):
    def __init__(self, clients: Callable[[], Any], tray: Any, workers: Workers, address: str,
                 parent: QWidget | None = None, limits: Any = None) -> None:
        """``clients()`` makes the client registry; it opens the memory database, so it is
        first called in a worker. ``limits``: the ``[gateway]`` settings, shown read-only."""
        super().__init__(parent)
        self.setObjectName("gatewayPage")
        self._make_registry, self.tray, self.workers = clients, tray, workers
        self._registry: Any = None
        self._registry_lock = threading.Lock()
        self.clients: dict[str, Any] = {}
        # Read-modify-write of one grant at a time, however fast the boxes are clicked.
        self._write_lock = threading.Lock()
        lay = QVBoxLayout(self)

        self.serve = QCheckBox(f"Serve MCP and the OpenAI-compatible API from the tray app on {address}")
        self.serve.setObjectName("gatewayServe")
        self.serve.setChecked(tray.enabled())
        self.serve.toggled.connect(tray.set_enabled)
        lay.addWidget(self.serve)
        self.serve_status = QLabel(tray.status)
        self.serve_status.setObjectName("gatewayServeStatus")
        self.serve_status.setWordWrap(True)
        lay.addWidget(self.serve_status)
        tray.changed.connect(self._tray_changed)

        lay.addWidget(QLabel("Programs allowed to use your memory and models, and what each may do. "
                             "A program nobody granted gets nothing."))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("gatewayClients")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        lay.addWidget(self.table, 1)

        row = QHBoxLayout()
        self.grant_btn = self._button("Grant", "gatewayGrant", row, self.grant_selected)
        self.revoke_btn = self._button("Revoke", "gatewayRevoke", row, self.revoke_selected)
        self.token_btn = self._button("New token", "gatewayRotate", row, self.rotate_selected)
        self.remove_btn = self._button("Remove", "gatewayRemove", row, self.remove_selected)
        row.addStretch(1)
        lay.addLayout(row)

        add = QHBoxLayout()
        self.new_name = QLineEdit()
        self.new_name.setObjectName("gatewayNewName")
        self.new_name.setPlaceholderText("claude-desktop")
        self.new_name.returnPressed.connect(self.add)
        add.addWidget(self.new_name, 1)
        self.add_btn = self._button("Add client", "gatewayAdd", add, self.add)
        lay.addLayout(add)

        tok = QHBoxLayout()
        self.token = QLineEdit()
        self.token.setObjectName("gatewayToken")
        self.token.setReadOnly(True)
        self.token.setPlaceholderText("A new bearer token appears here once; copy it into the program")
        tok.addWidget(self.token, 1)
        self.copy_btn = self._button("Copy", "gatewayCopy", tok, self.copy_token)
        lay.addLayout(tok)

        if limits is not None:
            self.limits = QLabel(limits_text(limits))
            self.limits.setObjectName("gatewayLimits")
            self.limits.setWordWrap(True)
            self.limits.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            lay.addWidget(self.limits)

        self.status = QLabel()
        self.status.setObjectName("gatewayStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.refresh()

    def _button(self, text: str, name: str, layout: Any, slot: Callable[[], Any]) -> QPushButton:
        b = QPushButton(text)
        b.setObjectName(name)
        b.clicked.connect(lambda _checked=False: slot())
        layout.addWidget(b)
        return b

    @property
    def registry(self) -> Any:
        """The client registry (worker threads only: the first use opens the database)."""
        with self._registry_lock:
            if self._registry is None:
                self._registry = self._make_registry()
            return self._registry

    # -- the list ----------------------------------------------------------------------

    def refresh(self) -> None:
        self.workers.submit(lambda: self.registry.list(), done=self._fill,
                            failed=lambda exc: self.status.setText(f"Cannot list the clients: {exc}"))

    def _fill(self, clients: list[Any]) -> None:
        selected = self.selected()
        self.clients = {c.name: c for c in clients}
        self.table.setRowCount(len(clients))
        for r, c in enumerate(clients):
            self.table.setItem(r, 0, QTableWidgetItem(c.name))
            self.table.setItem(r, 1, QTableWidgetItem(c.status))
            read = QComboBox()
            read.setObjectName(f"read_{c.name}")
            read.addItems(list(READ_LEVELS))
            read.setCurrentText(c.scopes.read if c.granted else "none")
            read.setEnabled(c.granted)
            read.currentTextChanged.connect(lambda t, n=c.name: self.set_scope(n, "read", t))
            self.table.setCellWidget(r, 2, read)
            for col, (key, _label) in enumerate(FLAGS, 3):
                box = QCheckBox()
                box.setObjectName(f"{key}_{c.name}")
                box.setChecked(c.granted and bool(getattr(c.scopes, key)))
                box.setEnabled(c.granted)
                box.toggled.connect(lambda on, n=c.name, k=key: self.set_scope(n, k, on))
                self.table.setCellWidget(r, col, box)
            self.table.setItem(r, 3 + len(FLAGS), QTableWidgetItem("yes" if c.has_token else "none"))
            seen = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.last_seen_at)) if c.last_seen_at else "never"
            self.table.setItem(r, 4 + len(FLAGS), QTableWidgetItem(seen))
            if c.name == selected:
                self.table.selectRow(r)
        self.table.resizeColumnsToContents()

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.text() if item is not None else None

    def select(self, name: str) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0) is not None and self.table.item(r, 0).text() == name:
                self.table.selectRow(r)

    def scope_box(self, name: str, key: str) -> Any:
        return self.table.findChild(QComboBox if key == "read" else QCheckBox, f"{key}_{name}")

    # -- changes (each in a worker, then the list again) -----------------------------------

    def _apply(self, work: Callable[[], Any], said: Callable[[Any], str]) -> None:
        def job() -> tuple[Any, list[Any]]:
            with self._write_lock:
                out = work()
            self.tray.clients_changed()
            return out, self.registry.list()

        def done(res: tuple[Any, list[Any]]) -> None:
            out, clients = res
            self._fill(clients)
            self.status.setText(said(out))

        self.workers.submit(job, done=done, failed=self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"Not changed: {exc}")
        self.refresh()  # show what is actually stored

    def set_scope(self, name: str, key: str, value: Any) -> None:
        from deskmind.core.gateway.clients import with_changes

        def work() -> Any:
            current = {c.name: c for c in self.registry.list()}[name]
            scopes = with_changes(current.scopes, **{key: value})
            if scopes.ground and scopes.read == "none":
                from deskmind.core.errors import UserInputError

                raise UserInputError("adding memory to chats needs reading memory above 'none'")
            return self.registry.grant(name, scopes)

        self._apply(work, lambda c: f"{c.name}: {c.scopes.describe()}")

    def add(self) -> None:
        from deskmind.core.gateway.clients import Scopes, check_name

        name = self.new_name.text().strip()
        try:
            check_name(name)
        except Exception as exc:
            self.status.setText(str(exc))
            return
        if name in self.clients and self.clients[name].granted:
            self.status.setText(f"{name} is already in the list")
            return
        self.new_name.clear()
        self._apply(lambda: self.registry.grant(name, Scopes(read="private")),
                    lambda c: f"Added {c.name}: {c.scopes.describe()}. 'New token' gives it a "
                              "token for HTTP; a stdio program needs none")

    def grant_selected(self) -> None:
        from deskmind.core.gateway.clients import Scopes

        name = self._need_selection()
        if name is None:
            return
        c = self.clients.get(name)
        scopes = c.scopes if c is not None and c.granted else Scopes(read="private")
        self._apply(lambda: self.registry.grant(name, scopes),
                    lambda c: f"Granted {c.name}: {c.scopes.describe()}")

    def revoke_selected(self) -> None:
        name = self._need_selection()
        if name is not None:
            self._apply(lambda: self.registry.revoke(name),
                        lambda c: f"Revoked {c.name}: it can do nothing now and its token no longer works")

    def remove_selected(self) -> None:
        name = self._need_selection()
        if name is not None:
            self._apply(lambda: self.registry.remove(name),
                        lambda _r: f"Removed {name}; what it did stays in the audit log")

    def rotate_selected(self) -> None:
        name = self._need_selection()
        if name is None:
            return

        def said(token: str) -> str:
            self.token.setText(token)
            return (f"New token for {name}: copy it now, it is not shown again; any earlier "
                    "token no longer works")

        self._apply(lambda: self.registry.rotate_token(name), said)

    def copy_token(self) -> None:
        if self.token.text():
            QGuiApplication.clipboard().setText(self.token.text())
            self.status.setText("Token copied")

    def _need_selection(self) -> str | None:
        name = self.selected()
        if name is None:
            self.status.setText("Select a client first")
        return name

    # -- serving from the tray -----------------------------------------------------------

    def _tray_changed(self) -> None:
        self.serve_status.setText(self.tray.status)
