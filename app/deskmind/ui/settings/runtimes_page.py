"""Runtimes: what is configured and built in, listed at once; probing fills in the state later.

Add a runtime (its API key goes to the keyring), disable, enable or remove one. Every change is
written to routing.toml by the core's editor, and the next question uses it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from deskmind.core.errors import DeskmindError
from deskmind.core.routing.editor import RoutingFile, RuntimeEntry
from deskmind.core.runtimes.kinds import RUNTIME_KINDS
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)


class RuntimesPage(QWidget):
    """``embedded``: the built-in llama.cpp runtime is installed (listed before any probe)."""

    def __init__(self, file: RoutingFile, inventory: Callable[..., Any], workers: Workers,
                 changed: Callable[[], None], secrets: Callable[[], Any], embedded: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runtimesPage")
        self.file, self._inventory, self.workers = file, inventory, workers
        self._changed, self._secrets, self._embedded = changed, secrets, embedded
        self.entries: list[RuntimeEntry] = []
        self.probed: dict[str, Any] = {}   # name -> ProviderState from the last probe
        self.probing = False
        # A probe may outlive the page (the window closed while a server was slow to answer).
        probes: set[asyncio.Future] = set()
        self._probes = probes
        self.destroyed.connect(lambda *_a: [t.cancel() for t in probes])
        lay = QVBoxLayout(self)
        self.table = QTableWidget(0, 5)
        self.table.setObjectName("runtimesTable")
        self.table.setHorizontalHeaderLabels(["Runtime", "Kind", "Zone", "State", "Models"])
        head = self.table.horizontalHeader()
        for c in range(4):   # the state says why a runtime is not answering: never cut short
            head.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.test_btn = QPushButton("Test runtimes")
        self.test_btn.setObjectName("runtimesTest")
        self.test_btn.clicked.connect(lambda: self.probe(refresh=True))
        self.toggle_btn = QPushButton("Disable")
        self.toggle_btn.setObjectName("runtimesToggle")
        self.toggle_btn.clicked.connect(self.toggle_selected)
        self.remove_btn = QPushButton("Remove")
        self.remove_btn.setObjectName("runtimesRemove")
        self.remove_btn.clicked.connect(self.remove_selected)
        for b in (self.test_btn, self.toggle_btn, self.remove_btn):
            row.addWidget(b)
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

    # -- the list ------------------------------------------------------------------------------

    def show_configured(self) -> None:
        """Read routing.toml (no probing) and show it with what the last probe learnt."""
        try:
            self.entries = self.file.runtimes(self._embedded)
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        self._fill()

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        out = []
        known = set()
        for e in self.entries:
            known.add(e.name)
            s = self.probed.get(e.name)
            if not e.enabled:
                state = "disabled"
            elif s is not None:
                state = ("✔ answering" if s.available else "✘") + (f" ({s.note})" if s.note else "")
            else:
                state = "checking…" if self.probing else "not tested"
            models = s.models if (s is not None and e.enabled) else e.models
            out.append((e.name, e.kind, e.zone, state, ", ".join(models[:6])))
        for name, s in self.probed.items():   # found by discovery, not in the file
            if name not in known:
                state = ("✔ answering" if s.available else "✘") + (f" ({s.note})" if s.note else "")
                out.append((name, s.kind, s.zone, state, ", ".join(s.models[:6])))
        return out

    def _fill(self) -> None:
        selected = self.selected()
        rows = self.rows()
        self.table.setRowCount(len(rows))
        for r, vals in enumerate(rows):
            for c, v in enumerate(vals):
                item = QTableWidgetItem(v)
                item.setToolTip(v)
                self.table.setItem(r, c, item)
            if vals[0] == selected:
                self.table.selectRow(r)
        self._update_buttons()

    def selected(self) -> str | None:
        items = self.table.selectedItems()
        return self.table.item(items[0].row(), 0).text() if items else None

    def _entry(self, name: str | None) -> RuntimeEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def _update_buttons(self) -> None:
        name = self.selected()
        entry = self._entry(name)
        self.toggle_btn.setEnabled(name is not None)
        self.toggle_btn.setText("Enable" if entry is not None and not entry.enabled else "Disable")
        self.remove_btn.setEnabled(entry is not None and entry.in_file)

    # -- probing (network I/O on the event loop, never blocking the GUI thread) ----------------

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self.probed and not self.probing:
            self.probe(refresh=False)

    def probe(self, refresh: bool) -> asyncio.Future:
        self.probing = True
        task = asyncio.ensure_future(self.test(refresh))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)
        return task

    async def test(self, refresh: bool = True) -> Any:
        self.probing = True
        self.status.setText("Testing…")
        self._fill()
        try:
            inv = await self._inventory(refresh=refresh)
        except Exception as exc:
            self.status.setText(f"Test failed: {exc}")
            return None
        finally:
            self.probing = False
        self.probed = dict(inv.providers)
        self._fill()
        up = sum(1 for s in inv.providers.values() if s.available)
        self.status.setText(f"{up} of {len(inv.providers)} runtime(s) answering" if inv.providers
                            else "No runtime found: start Ollama or LM Studio, or add one below.")
        return inv

    # -- changes -------------------------------------------------------------------------------

    def _saved(self, message: str) -> None:
        self.status.setText(message)
        self._changed()
        self.show_configured()

    def toggle_selected(self) -> bool:
        name = self.selected()
        if name is None:
            return False
        entry = self._entry(name)
        enable = entry is not None and not entry.enabled
        s = self.probed.get(name)
        kind = entry.kind if entry is not None else (s.kind if s is not None else "")
        try:
            self.file.set_runtime_enabled(name, enable, kind=kind, url=getattr(s, "url", "") or "")
        except (ValueError, DeskmindError) as exc:
            self.status.setText(f"Not changed: {exc}")
            return False
        self.probed.pop(name, None)   # its state is stale until the next probe
        self._saved(f"{name} enabled" if enable else f"{name} disabled: it is no longer used or probed")
        return True

    def remove_selected(self) -> bool:
        name = self.selected()
        entry = self._entry(name)
        if name is None or entry is None:
            return False
        try:
            self.file.remove_runtime(name)
        except (ValueError, DeskmindError) as exc:
            self.status.setText(f"Not removed: {exc}")
            return False
        self.probed.pop(name, None)
        self._saved(f"Removed {name}" + (f"; its API key stays in the keyring until you run "
                                        f"'deskmind secrets delete {entry.key}'" if entry.key else ""))
        return True

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
            self._changed()
            self.show_configured()
        else:
            self._saved(f"Added {name}")
        return True
