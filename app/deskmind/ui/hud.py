"""The push-to-talk HUD: recording with a live level meter, then "transcribing", then a toast."""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QMouseEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

log = logging.getLogger(__name__)

TOAST_MS = 6000


class TalkHud(QWidget):
    note_clicked = Signal(object)       # the saved note, to open it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint
                         | Qt.WindowType.WindowStaysOnTopHint | Qt.WindowType.WindowDoesNotAcceptFocus)
        self.setObjectName("talkHud")
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setStyleSheet("#talkHud { background: #263238; } QLabel { color: white; }")
        self.state = "hidden"
        self.what = "Recording"
        self.note: Any = None
        self._since = 0.0
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.dot = QLabel("●")
        self.dot.setStyleSheet("color: #e53935; font-size: 18px;")
        self.label = QLabel()
        self.label.setObjectName("hudLabel")
        row.addWidget(self.dot)
        row.addWidget(self.label, 1)
        lay.addLayout(row)
        self.meter = QProgressBar()
        self.meter.setObjectName("hudMeter")
        self.meter.setRange(0, 100)
        self.meter.setTextVisible(False)
        self.meter.setFixedHeight(8)
        lay.addWidget(self.meter)
        self._hide_timer = QTimer(self, singleShot=True)
        self._hide_timer.timeout.connect(self._expire)
        self._tick = QTimer(self, interval=250)
        self._tick.timeout.connect(self._update_clock)
        self.resize(300, 70)

    def _place(self) -> None:
        screen = QGuiApplication.primaryScreen().availableGeometry()
        self.move(QPoint(screen.x() + (screen.width() - self.width()) // 2,
                         screen.y() + screen.height() - self.height() - 60))

    def recording(self, mode: str = "hold", what: str = "Recording") -> None:
        self.state = "recording"
        self.what = what
        self._since = time.monotonic()
        self.hint = "release to stop" if mode == "hold" else "press the hotkey again to stop"
        self.dot.show()
        self.meter.show()
        self.meter.setValue(0)
        self._update_clock()
        self._tick.start()
        self._hide_timer.stop()
        self._place()
        self.show()

    def _update_clock(self) -> None:
        s = int(time.monotonic() - self._since)
        self.label.setText(f"{self.what} {s // 60}:{s % 60:02d} — {self.hint}")

    def set_level(self, level: float) -> None:
        if self.state == "recording":
            self.meter.setValue(int(max(0.0, min(1.0, level)) * 100))

    def transcribing(self) -> None:
        self.state = "transcribing"
        self._tick.stop()
        self.dot.hide()
        self.meter.hide()
        self.label.setText("Transcribing…")
        self._place()
        self.show()

    def toast(self, text: str, note: Any = None) -> None:
        """Show the saved note (click to open) or an error; hides itself after a while."""
        self.state = "toast"
        self.note = note
        self._tick.stop()
        self.dot.hide()
        self.meter.hide()
        self.label.setText(text + ("  (click to open)" if note is not None else ""))
        self._place()
        self.show()
        self._hide_timer.start(TOAST_MS)

    def _expire(self) -> None:
        self.state = "hidden"
        self.hide()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.state == "toast" and self.note is not None:
            self.note_clicked.emit(self.note)
        self._expire()
