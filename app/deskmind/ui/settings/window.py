"""The settings window: a list of pages on the left, the page on the right; no Apply button."""

from __future__ import annotations

from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QStackedWidget, QVBoxLayout,
                               QWidget)


class SettingsWindow(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsWindow")
        self.setWindowTitle("Deskmind — Settings")
        lay = QHBoxLayout(self)
        self.nav = QListWidget()
        self.nav.setObjectName("settingsNav")
        self.nav.setFixedWidth(150)
        self.stack = QStackedWidget()
        lay.addWidget(self.nav)
        right = QVBoxLayout()
        right.addWidget(self.stack, 1)
        note = QLabel("Changes apply at once.")
        note.setStyleSheet("color: #78909c")
        right.addWidget(note)
        lay.addLayout(right, 1)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.pages: dict[str, QWidget] = {}
        self.resize(820, 520)

    def add_page(self, title: str, page: QWidget, before: str | None = None) -> None:
        titles = list(self.pages)
        at = titles.index(before) if before in titles else len(titles)
        self.pages = dict([*list(self.pages.items())[:at], (title, page), *list(self.pages.items())[at:]])
        self.nav.insertItem(at, title)
        self.stack.insertWidget(at, page)
        if self.nav.count() == 1:
            self.nav.setCurrentRow(0)

    def show_page(self, title: str) -> None:
        titles = list(self.pages)
        if title in titles:
            self.nav.setCurrentRow(titles.index(title))
        self.show()
        self.raise_()
        self.activateWindow()
