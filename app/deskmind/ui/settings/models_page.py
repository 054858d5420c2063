"""Models per class: ordered "provider:model" candidates for fast, general, coder, embed…"""

from __future__ import annotations

from typing import Callable

import tomlkit
from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from deskmind.ui.settings.routing_file import RoutingFile


class ModelsPage(QWidget):
    def __init__(self, file: RoutingFile, changed: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelsPage")
        self.file, self._changed = file, changed
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Candidates in order, comma-separated, as provider:model; \"auto\" means "
                             "the models of runtimes running on this machine."))
        self.form = QFormLayout()
        lay.addLayout(self.form)
        self.status = QLabel()
        self.status.setObjectName("modelsStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addStretch(1)
        self.edits: dict[str, QLineEdit] = {}
        cfg, err = file.validate(file.text())
        classes = cfg.classes if cfg else {}
        for klass in sorted(set(classes) | {"fast", "general", "coder", "embed"}):
            e = QLineEdit(", ".join(classes.get(klass, ["auto"])))
            e.setObjectName(f"class_{klass}")
            e.editingFinished.connect(lambda k=klass: self.save(k))
            self.edits[klass] = e
            self.form.addRow(klass, e)

    def save(self, klass: str) -> bool:
        items = [s.strip() for s in self.edits[klass].text().split(",") if s.strip()]
        arr = tomlkit.array()
        arr.extend(items)
        try:
            self.file.set_table("classes", None, {klass: arr})
        except ValueError as exc:
            self.status.setText(f"Not saved: {exc}")
            return False
        self.status.setText(f"{klass}: {', '.join(items)}")
        self._changed()
        return True
