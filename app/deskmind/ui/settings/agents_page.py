"""Agent permissions: a matrix of agents × scopes; each change is saved to routing.toml."""

from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QLabel, QTableWidget, QVBoxLayout, QWidget)

from deskmind.core.memory.models import PRIVACY_LEVELS
from deskmind.ui.settings.routing_file import RoutingFile

log = logging.getLogger(__name__)

SCOPES = (("write_memory", "write memory"), ("shell", "run commands"), ("cloud", "reach the cloud"),
          ("paste", "paste into apps"), ("delete", "delete"))


class AgentsPage(QWidget):
    def __init__(self, file: RoutingFile, changed: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("agentsPage")
        self.file, self._changed = file, changed
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("What each agent may do. Anything not granted is refused; shell, "
                             "writes, deletes and the cloud also ask you each time."))
        self.table = QTableWidget()
        self.table.setObjectName("agentsMatrix")
        lay.addWidget(self.table, 1)
        self.status = QLabel()
        self.status.setObjectName("agentsStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.reload()

    def agents(self) -> dict[str, Any]:
        from deskmind.core.agents.permissions import BUILT_IN

        cfg, _err = self.file.validate(self.file.text())
        merged = dict(BUILT_IN)
        if cfg is not None:
            merged.update(cfg.agents)
        return merged

    def reload(self) -> None:
        agents = self.agents()
        self.table.clear()
        self.table.setRowCount(len(agents))
        self.table.setColumnCount(1 + len(SCOPES))
        self.table.setHorizontalHeaderLabels(["read memory up to"] + [label for _k, label in SCOPES])
        self.table.setVerticalHeaderLabels(list(agents))
        for r, (name, a) in enumerate(agents.items()):
            combo = QComboBox()
            combo.addItems(["nothing", *PRIVACY_LEVELS])
            combo.setCurrentText(a.memory_ceiling or "nothing")
            combo.currentTextChanged.connect(lambda t, n=name: self.set(n, "memory_ceiling", None if t == "nothing" else t))
            self.table.setCellWidget(r, 0, combo)
            for c, (key, _label) in enumerate(SCOPES, 1):
                box = QCheckBox()
                box.setObjectName(f"scope_{name}_{key}")
                box.setChecked(bool(getattr(a, key)))
                box.toggled.connect(lambda on, n=name, k=key: self.set(n, k, on))
                self.table.setCellWidget(r, c, box)
        self.table.resizeColumnsToContents()

    def cell(self, agent: str, scope: str) -> QCheckBox:
        return self.table.findChild(QCheckBox, f"scope_{agent}_{scope}")

    def set(self, agent: str, key: str, value: Any) -> bool:
        base = self.agents()[agent]
        values = {k: getattr(base, k) for k in ("memory_ceiling", "write_memory", "shell", "cloud", "paste", "delete")}
        values[key] = value
        try:
            self.file.set_table("agents", agent, values)
        except ValueError as exc:
            self.status.setText(f"Not saved: {exc}")
            return False
        self.status.setText(f"{agent}: {key.replace('_', ' ')} {'allowed' if value else 'refused'}"
                            if isinstance(value, bool) else f"{agent}: memory up to {value or 'nothing'}")
        self._changed()
        return True
