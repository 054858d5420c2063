"""Privacy: what each trust zone may receive, the home hosts, the cloud switch, the egress ledger."""

from __future__ import annotations

import time
from typing import Any, Callable

import tomlkit
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from deskmind.core.memory.models import PRIVACY_LEVELS
from deskmind.ui.settings.routing_file import RoutingFile
from deskmind.ui.tasks import Workers


class PrivacyPage(QWidget):
    def __init__(self, file: RoutingFile, ledger: Callable[[], Any], workers: Workers, changed: Callable[[], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("privacyPage")
        # ledger() makes the egress ledger (it opens the memory database: call it in a worker)
        self.file, self._ledger, self.workers, self._changed = file, ledger, workers, changed
        cfg, _err = file.validate(file.text())
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.cloud = QCheckBox("Allow the cloud zone at all (rules must still send requests there)")
        self.cloud.setObjectName("cloudSwitch")
        self.cloud.setChecked(bool(cfg and cfg.cloud))
        self.cloud.toggled.connect(lambda on: self._save("defaults", {"cloud": on}))
        form.addRow(self.cloud)
        self.ceilings: dict[str, QComboBox] = {}
        for zone in ("machine", "home", "cloud"):
            c = QComboBox()
            c.addItems(list(PRIVACY_LEVELS))
            c.setCurrentText((cfg.ceilings if cfg else {}).get(zone, "public"))
            c.setObjectName(f"ceiling_{zone}")
            c.currentTextChanged.connect(lambda t, z=zone: self._save_ceiling(z, t))
            self.ceilings[zone] = c
            form.addRow(f"{zone} may receive up to", c)
        self.hosts = QLineEdit(", ".join(cfg.home_hosts if cfg else []))
        self.hosts.setPlaceholderText("gpu-box.lan, 192.168.1.20")
        self.hosts.editingFinished.connect(self._save_hosts)
        form.addRow("Home hosts", self.hosts)
        lay.addLayout(form)
        self.status = QLabel()
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addWidget(QLabel("Egress ledger: every request that left this machine, recorded before it was sent"))
        self.ledger = QTableWidget(0, 7)
        self.ledger.setObjectName("egressLedger")
        self.ledger.setHorizontalHeaderLabels(["When", "Provider", "Host", "Zone", "Model", "Bytes out/in", "Items"])
        self.ledger.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.ledger.verticalHeader().hide()
        lay.addWidget(self.ledger, 1)
        refresh = QPushButton("Refresh ledger")
        refresh.clicked.connect(self.refresh)
        lay.addWidget(refresh)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()

    def _save(self, section: str, values: dict[str, Any]) -> bool:
        try:
            self.file.set_table(section, None, values)
        except ValueError as exc:
            self.status.setText(f"Not saved: {exc}")
            return False
        self.status.setText("Saved; applies to the next request")
        self._changed()
        return True

    def _save_ceiling(self, zone: str, tag: str) -> bool:
        doc = self.file.doc()
        zones = doc.setdefault("zones", tomlkit.table())
        ceiling = zones.setdefault("ceiling", tomlkit.table())
        ceiling[zone] = tag
        try:
            self.file.save_doc(doc)
        except ValueError as exc:
            self.status.setText(f"Not saved: {exc}")
            return False
        self._changed()
        self.status.setText(f"{zone} may now receive up to {tag}")
        return True

    def _save_hosts(self) -> bool:
        arr = tomlkit.array()
        arr.extend(h.strip() for h in self.hosts.text().split(",") if h.strip())
        return self._save("zones", {"home_hosts": arr})

    def refresh(self) -> None:
        self.workers.submit(lambda: self._ledger().entries(limit=500), done=self._fill,
                            failed=lambda e: self.status.setText(f"Ledger: {e}"))

    def _fill(self, entries: list[Any]) -> None:
        self.ledger.setRowCount(len(entries))
        for r, e in enumerate(reversed(entries)):
            vals = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at)), e.provider, e.host, e.zone,
                    e.model, f"{e.bytes_out}/{e.bytes_in if e.bytes_in is not None else '—'}",
                    ", ".join(map(str, e.item_ids)) or "none"]
            for c, v in enumerate(vals):
                self.ledger.setItem(r, c, QTableWidgetItem(v))
        if not entries:
            self.status.setText("Nothing has left this machine.")
        else:
            n = len(entries)
            self.status.setText(f"{n} request{'s' if n != 1 else ''} left this machine "
                                f"(the newest first).")
