"""Minutes of a finished meeting, rendered from Markdown, with citations to transcript times."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QTextBrowser, QVBoxLayout, QWidget


class MinutesWindow(QWidget):
    open_meeting = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("minutesWindow")
        self.setWindowTitle("Deskmind — Meeting minutes")
        self.meeting_id: int | None = None
        lay = QVBoxLayout(self)
        self.view = QTextBrowser()
        self.view.setObjectName("minutesText")
        lay.addWidget(self.view, 1)
        row = QHBoxLayout()
        self.open_btn = QPushButton("Open the meeting in Memory…")
        self.open_btn.clicked.connect(lambda: self.meeting_id is not None and self.open_meeting.emit(self.meeting_id))
        row.addStretch(1)
        row.addWidget(self.open_btn)
        lay.addLayout(row)
        self.resize(560, 520)

    def show_minutes(self, markdown: str, meeting_id: int | None = None) -> None:
        self.meeting_id = meeting_id
        self.view.setMarkdown(markdown)
        self.show()
        self.raise_()
