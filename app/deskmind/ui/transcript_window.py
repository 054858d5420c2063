"""The live transcript of a running meeting, on demand from the tray."""

from __future__ import annotations

import bisect
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
        # (start, channel, line) in time order: each channel is transcribed on its own, so a
        # channel's turns can arrive after later turns of the other one.
        self._lines: list[tuple[float, str, str]] = []
        self.resize(520, 420)

    def clear(self) -> None:
        self.text.clear()
        self.segments = 0
        self._lines = []

    def add_segment(self, seg: Any) -> None:
        """One transcribed turn (a core Segment or its dict), put in time order among the
        others as the saved transcript is; the channel says who spoke: "me" is the microphone,
        "others" the computer's sound."""
        if isinstance(seg, dict):
            start, text, who = seg.get("start", 0.0), seg.get("text", ""), seg.get("channel")
        else:
            start, text, who = getattr(seg, "start", 0.0), getattr(seg, "text", str(seg)), getattr(seg, "channel", None)
        start = float(start or 0.0)
        row = (start, who or "", f"[{clock(start)}] " + (f"{who}: " if who else "") + text.strip())
        at = bisect.bisect_right(self._lines, row[:2], key=lambda r: r[:2])
        self._lines.insert(at, row)
        if at == len(self._lines) - 1:
            self.text.appendPlainText(row[2])
        else:  # a turn from before what is shown: lay the text out again in order
            self.text.setPlainText("\n".join(r[2] for r in self._lines))
        self.text.moveCursor(QTextCursor.MoveOperation.End)
        self.segments += 1
