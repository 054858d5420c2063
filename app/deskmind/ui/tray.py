"""The tray icon and its menu, or a small window where no system tray exists."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import (QLabel, QMenu, QPushButton, QSystemTrayIcon, QVBoxLayout,
                               QWidget)

log = logging.getLogger(__name__)

STATES = ("idle", "recording", "meeting", "indexing", "attention")
STATE_TEXT = {
    "idle": "Deskmind",
    "recording": "Deskmind: recording a voice note",
    "meeting": "Deskmind: recording a meeting",
    "indexing": "Deskmind: indexing files",
    "attention": "Deskmind: needs your attention",
}


def icons_dir() -> Path:
    # Installed as a wheel the icons are deskmind.resources; in a Briefcase bundle, "resources".
    for package in ("deskmind.resources", "resources"):
        try:
            return Path(str(resources.files(package) / "icons"))
        except ModuleNotFoundError:
            continue
    return Path(__file__).resolve().parents[3] / "resources" / "icons"


def state_icon(state: str) -> QIcon:
    icon = QIcon()
    for size in (16, 22, 32, 48, 64):
        icon.addFile(str(icons_dir() / f"tray-{state}-{size}.png"))
    return icon


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class TrayController(QObject):
    """Owns the tray icon (or the fallback window) and reports what the person chose."""

    ask_requested = Signal()
    meeting_toggled = Signal()
    index_requested = Signal()
    memory_requested = Signal()
    settings_requested = Signal()
    transcript_requested = Signal()
    pause_toggled = Signal(bool)
    quit_requested = Signal()
    notified = Signal(str, str)          # (title, message) of every notification shown

    def __init__(self, tray_available: bool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = "idle"
        self._attention: str | None = None
        self._icons = {s: state_icon(s) for s in STATES}
        self.menu = QMenu()
        self.menu.setObjectName("trayMenu")
        self.act_ask = self._add("Ask…", self.ask_requested)
        self.act_meeting = self._add("Start meeting", self.meeting_toggled)
        self.act_transcript = self._add("Live transcript…", self.transcript_requested)
        self.act_transcript.setVisible(False)
        self.menu.addSeparator()
        self.act_index = self._add("Index files…", self.index_requested)
        self.act_memory = self._add("Memory…", self.memory_requested)
        self.act_settings = self._add("Settings…", self.settings_requested)
        self.act_pause = QAction("Pause indexing", self.menu, checkable=True)
        self.act_pause.toggled.connect(self.pause_toggled)
        self.menu.addAction(self.act_pause)
        self.menu.addSeparator()
        self._add("Quit", self.quit_requested)
        if tray_available is None:
            tray_available = QSystemTrayIcon.isSystemTrayAvailable()
        self.tray: QSystemTrayIcon | None = None
        self.fallback: FallbackWindow | None = None
        if tray_available:
            self.tray = QSystemTrayIcon(self._icons["idle"], self)
            self.tray.setContextMenu(self.menu)
            self.tray.setToolTip(STATE_TEXT["idle"])
            self.tray.activated.connect(self._activated)
        else:
            log.warning("no system tray available: showing the Deskmind window instead")
            self.fallback = FallbackWindow(self.menu)

    def _add(self, text: str, signal: Signal) -> QAction:
        act = QAction(text, self.menu)
        act.triggered.connect(lambda _checked=False: signal.emit())
        self.menu.addAction(act)
        return act

    def show(self) -> None:
        if self.tray is not None:
            self.tray.show()
        elif self.fallback is not None:
            self.fallback.show()

    def hide(self) -> None:
        if self.tray is not None:
            self.tray.hide()
        if self.fallback is not None:
            self.fallback.hide()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # A left click asks; the context menu covers everything else.
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.ask_requested.emit()

    def set_state(self, state: str, detail: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown tray state {state!r}")
        self.state = state
        tip = STATE_TEXT[state] + (f" — {detail}" if detail else "")
        if self.tray is not None:
            self.tray.setIcon(self._icons[state])
            self.tray.setToolTip(tip)
        if self.fallback is not None:
            self.fallback.set_status(tip)

    def set_meeting(self, elapsed_s: float | None) -> None:
        """None: no meeting running; otherwise show the elapsed time on the menu item."""
        if elapsed_s is None:
            self.act_meeting.setText("Start meeting")
            self.act_transcript.setVisible(False)
        else:
            self.act_meeting.setText(f"Stop meeting ({clock(elapsed_s)})")
            self.act_transcript.setVisible(True)

    def notify(self, title: str, message: str, attention: bool = False) -> None:
        if attention:
            self.set_state("attention", message)
        self.notified.emit(title, message)
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            self.tray.showMessage(title, message, self._icons["attention" if attention else "idle"], 6000)
        elif self.fallback is not None:
            self.fallback.set_status(f"{title}: {message}")


class FallbackWindow(QWidget):
    """Stands in for the tray where the desktop has none, and says so."""

    def __init__(self, menu: QMenu) -> None:
        super().__init__()
        self.setObjectName("fallbackWindow")
        self.setWindowTitle("Deskmind")
        self.setWindowIcon(state_icon("idle"))
        lay = QVBoxLayout(self)
        self.message = QLabel(
            "This desktop has no system tray, so Deskmind lives in this small window.\n"
            "Close it to keep Deskmind running; use Quit to stop it.")
        self.message.setWordWrap(True)
        self.status = QLabel(STATE_TEXT["idle"])
        lay.addWidget(self.message)
        lay.addWidget(self.status)
        for act in menu.actions():
            if act.isSeparator():
                continue
            btn = QPushButton(act.text().replace("…", "…"))
            btn.setObjectName("fallback_" + act.text().split()[0].strip("…").lower())
            btn.clicked.connect(act.trigger)
            act.changed.connect(lambda b=btn, a=act: (b.setText(a.text()), b.setVisible(a.isVisible())))
            btn.setVisible(act.isVisible())
            lay.addWidget(btn)
        self.setMinimumWidth(340)
        self.adjustSize()

    def set_status(self, text: str) -> None:
        self.status.setText(text)
