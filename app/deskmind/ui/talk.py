"""Push-to-talk: the talk hotkey drives a VoiceNoteRecorder; the HUD shows where it is.

Building the first recorder imports sounddevice (PortAudio starts and lists devices), start()
opens the microphone and stop() transcribes and saves: all of it runs on the speech executor,
never on the GUI thread; results come back through the bridge. Key autorepeat on X11 can deliver
release+press pairs while a key is held, so a release only stops after a short quiet spell.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from deskmind.ui.bridge import CoreBridge
from deskmind.ui.hud import TalkHud
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)

RELEASE_DEBOUNCE_MS = 80


def meter_level(rms: float) -> float:
    """RMS of float samples to 0..1 on a -60..0 dBFS scale (speech sits around the middle)."""
    if rms <= 0:
        return 0.0
    return max(0.0, min(1.0, (20 * math.log10(rms) + 60) / 60))


class HeldKey(QObject):
    """A talk key's press/release logic, shared by push-to-talk and dictation: hold to record
    (a release stops after a short quiet spell, since X11 autorepeat sends release+press pairs
    while a key is held), or press once to start and again to stop. Subclasses record in
    :meth:`start` and finish in :meth:`stop`, going through the shared steps (:meth:`_starting`,
    :meth:`_recording`, :meth:`_start_failed`, :meth:`_stopping`), which keep the state, the HUD
    and the tray in step."""

    state_changed = Signal(str)          # idle | starting | recording | transcribing
    doing = "Recording"                  # what the HUD says while the key is held
    cannot = "Cannot record"             # how a failed start is told

    def __init__(self, mode: str, hud: TalkHud, set_tray: Callable[[str], None] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = "idle"
        self.mode = mode
        self.hud = hud
        self._set_tray = set_tray or (lambda _s: None)
        self._stop_when_started = False
        self._release = QTimer(self, singleShot=True, interval=RELEASE_DEBOUNCE_MS)
        self._release.timeout.connect(self.stop)

    def _set(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)

    def _starting(self, mode: str) -> None:
        self.mode = mode
        self._stop_when_started = False
        self._set("starting")
        self.hud.recording(mode, what=self.doing)
        self._set_tray("recording")

    def _recording(self) -> None:
        """The microphone is open: a stop asked for while it opened happens now."""
        self._set("recording")
        if self._stop_when_started:
            self.stop()

    def _start_failed(self, exc: BaseException) -> None:
        self._set("idle")
        self._set_tray("idle")
        self.hud.toast(f"{self.cannot}: {exc}")

    def _stopping(self) -> bool:
        """Whether a stop goes ahead now (recording: the state turns to transcribing); while
        starting it is kept for when recording begins."""
        if self.state == "starting":
            self._stop_when_started = True
            return False
        if self.state != "recording":
            return False
        self._set("transcribing")
        self.hud.transcribing()
        self._set_tray("idle")
        return True

    def pressed(self, hold: bool) -> None:
        if self._release.isActive():      # autorepeat: the key never really went up
            self._release.stop()
            return
        if self.state == "idle":
            self.start("hold" if hold else "toggle")
        elif not hold and self.state in ("recording", "starting"):
            self.stop()

    def released(self, hold: bool) -> None:
        if hold and self.state in ("recording", "starting"):
            self._release.start()

    def toggle(self) -> None:
        """From `deskmind trigger` or the tray: press once to start, again to stop."""
        if self.state == "idle":
            self.start("toggle")
        elif self.state in ("recording", "starting"):
            self.stop()

    def start(self, mode: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class TalkController(HeldKey):
    note_saved = Signal(object)

    def __init__(self, make_recorder: Callable[..., Any], bridge: CoreBridge, workers: Workers,
                 hud: TalkHud, set_tray: Callable[[str], None] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__("toggle", hud, set_tray, parent)
        self.bridge, self.workers = bridge, workers
        self._make = make_recorder
        self.recorder: Any = None        # reused by the next note; None builds a new one
        self._active: Any = None         # the recorder of the note in progress
        self._settings_version = 0
        bridge.level_changed.connect(lambda rms: hud.set_level(meter_level(rms)))
        bridge.note_failed.connect(self._failed_while_recording)

    # -- recording -------------------------------------------------------------------------

    def start(self, mode: str) -> None:
        self._starting(mode)
        version = self._settings_version
        self.workers.submit(self._open, self.recorder, time.monotonic(), done=lambda rec: self._started(rec, version),
                            failed=self._start_failed, executor=self.workers.speech)

    def _open(self, recorder: Any, pressed_at: float) -> Any:
        """Speech worker: build the recorder when there is none yet, open the microphone (or
        start from the pre-roll kept since just before ``pressed_at``)."""
        rec = recorder if recorder is not None else self._make(on_level=self.bridge.on_level,
                                                               on_error=self.bridge.on_note_error)
        rec.start(pressed_at)
        return rec

    def _started(self, recorder: Any, version: int) -> None:
        self._active = recorder
        if version == self._settings_version:    # else settings changed meanwhile: build anew next time
            self.recorder = recorder
        self._recording()

    def stop(self) -> None:
        if not self._stopping():
            return
        rec, self._active = self._active, None
        self.workers.submit(rec.stop, done=self._saved, failed=self._save_failed,
                            executor=self.workers.speech)

    def _saved(self, note: Any) -> None:
        self._set("idle")
        text = " ".join((getattr(note, "text", "") or "").split())
        self.hud.toast(f"Saved note: {text[:70]}{'…' if len(text) > 70 else ''}", note)
        self.note_saved.emit(note)

    def _save_failed(self, exc: BaseException) -> None:
        self._set("idle")
        self.hud.toast(str(exc))

    def shutdown(self) -> None:
        """Quitting (GUI thread): close a microphone left open by a voice note in progress.
        Stopping the stream takes a few milliseconds; what was said is not saved."""
        self._release.stop()
        rec, self._active = self._active, None
        if rec is not None:
            rec.cancel()

    def settings_changed(self) -> None:
        """Speech settings changed (GUI thread): the next note builds a recorder that uses them;
        a note in progress finishes with the one it has."""
        self.recorder = None
        self._settings_version += 1

    def _failed_while_recording(self, message: str) -> None:
        """The voice note's microphone stopped by itself (GUI thread): keep what was said."""
        if self.state in ("starting", "recording"):
            self.hud.toast(f"Recording stopped: {message}")
            self.stop()       # while starting: stops as soon as it has started
