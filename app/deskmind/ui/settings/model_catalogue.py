"""The recommended models per class, with size, memory needed and whether each fits here.

One click on a row's button chooses that model for its class: at once when its file is in
the library, else after pulling it (the page that holds this table runs the pull).
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHeaderView, QPushButton, QTableWidget, QTableWidgetItem, QWidget

from deskmind.core.models.catalogue import CatalogueEntry

COLUMNS = ("Class", "Model", "Download", "Memory", "This computer", "")


class ModelCatalogue(QTableWidget):
    use_requested = Signal(str)  # catalogue entry id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("modelCatalogue")
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.buttons: dict[str, QPushButton] = {}

    def show_entries(self, rows: Sequence[tuple[CatalogueEntry, bool]], ram_mb: int,
                     chosen: dict[str, str], downloaded: set[str], busy: bool = False) -> None:
        """``chosen``: class -> entry id in use; ``downloaded``: ids whose file is here."""
        self.setRowCount(len(rows))
        self.buttons.clear()
        for r, (e, fits) in enumerate(rows):
            in_use = chosen.get(e.cls) == e.id
            cells = (e.cls, e.title, f"{e.size_mb / 1000:.1f} GB", f"{e.ram_mb / 1024:.1f} GB",
                     "fits" if fits else f"too big ({ram_mb / 1024:.1f} GB here)")
            for c, text in enumerate(cells):
                self.setItem(r, c, QTableWidgetItem(text))
            label = ("In use" if in_use else f"Use for {e.cls}" if e.id in downloaded
                     else f"Download and use for {e.cls}")
            button = QPushButton(label)
            button.setObjectName(f"catalogueUse-{e.id}")
            button.setEnabled(fits and not in_use and not busy)
            if not fits:
                button.setToolTip(f"{e.title} needs {e.ram_mb / 1024:.1f} GB of memory; "
                                  f"this computer has {ram_mb / 1024:.1f} GB")
            button.clicked.connect(lambda _=False, i=e.id: self.use_requested.emit(i))
            self.setCellWidget(r, len(COLUMNS) - 1, button)
            self.buttons[e.id] = button
        self.resizeColumnsToContents()
