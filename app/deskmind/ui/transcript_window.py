"""The live transcript of a running meeting, on demand from the tray."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from deskmind.ui.tray import clock


class TranscriptWindow(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcriptWindow")
        self.setWindowTitle("Deskmind — Live transcript")
        lay = QVBoxLayout(self)
        self.header = QLabel("Meeting transcript (updates as people speak)")
        self.text = QPlainTextEdit()
        self.text.setObjectName("transcriptText")
        self.text.setReadOnly(True)
        lay.addWidget(self.header)
        lay.addWidget(self.text, 1)
        self.segments = 0
        self.resize(520, 420)

    def clear(self) -> None:
        self.text.clear()
        self.segments = 0

    def add_segment(self, seg: Any) -> None:
        """One transcribed turn (a core Segment or its dict); the channel says who spoke:
        "me" is the microphone, "others" the computer's sound."""
        if isinstance(seg, dict):
            start, text, who = seg.get("start", 0.0), seg.get("text", ""), seg.get("channel")
        else:
            start, text, who = getattr(seg, "start", 0.0), getattr(seg, "text", str(seg)), getattr(seg, "channel", None)
        self.text.appendPlainText(f"[{clock(start or 0.0)}] " + (f"{who}: " if who else "") + text.strip())
        self.text.moveCursor(QTextCursor.MoveOperation.End)
        self.segments += 1
