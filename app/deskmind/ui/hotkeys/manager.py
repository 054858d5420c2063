"""Arms the global hotkeys, checks them, re-arms them after sleep, and reports per hotkey.

Backends (pynput, the XDG portal) run their own threads and call plain callbacks; this manager
lives on the GUI thread and hands those callbacks the bridge's signals.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from deskmind.ui.bridge import CoreBridge
from deskmind.ui.hotkeys.combos import check_bindings, display
from deskmind.ui.hotkeys.portal import (PortalHotkeys, is_wayland, portal_version,
                                        trigger_instructions)
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)

# Keys held while speaking: hold-to-talk when key-up events are seen.
TALK_ACTIONS = ("talk", "dictate")
RESUME_CHECK_MS = 5000
RESUME_JUMP_S = 4.0


@dataclass
class HotkeyStatus:
    action: str
    combo: str
    armed: bool
    mode: str          # "hold", "toggle", or "off"
    detail: str

    @property
    def label(self) -> str:
        return display(self.combo)


BackendFactory = Callable[[Callable[[str], None], Callable[[str], None]], Any]


def default_backend_factory(environ: dict[str, str] | None = None) -> BackendFactory | None:
    """pynput on X11/Windows/macOS; the portal on Wayland when present; else None."""
    if is_wayland(environ):
        return PortalHotkeys if portal_version() is not None else None
    from deskmind.ui.hotkeys.pynput_backend import PynputHotkeys

    return PynputHotkeys


class HotkeyManager(QObject):
    """``checked`` carries the list of :class:`HotkeyStatus` after each arm or self-check."""

    checked = Signal(list)

    def __init__(self, bridge: CoreBridge, workers: Workers, bindings: dict[str, str],
                 talk_mode: str = "auto", backend_factory: BackendFactory | None | str = "auto",
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.workers = workers
        self.bindings = dict(bindings)
        self.talk_mode = talk_mode
        self._factory = backend_factory
        self.backend: Any = None
        self.statuses: list[HotkeyStatus] = []
        self.instructions: str | None = None
        self._clock, self._mono = clock, monotonic
        self._last = (clock(), monotonic())
        self.resume_timer = QTimer(self)
        self.resume_timer.setInterval(RESUME_CHECK_MS)
        self.resume_timer.timeout.connect(self.check_resume)
        self.rearmed = 0
        # True while a settings field is capturing a combination: the keys pressed there are
        # meant for the field, not for the action they happen to be bound to.
        self.capturing = False
        self._stopped = False
        self._serial = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deskmind-hotkeys")
        # One line saying how dictated text will reach the focused app (the self-check shows it).
        self.describe_delivery: Callable[[], str] | None = None

    # -- arming --------------------------------------------------------------------------------

    def start(self) -> None:
        """Arm in a worker (connecting to X or D-Bus takes a moment); statuses follow."""
        if self._stopped:
            return
        # One arming at a time, in order: a serial executor of its own.
        self.workers.submit(self._arm_and_describe, dict(self.bindings), done=self._armed,
                            failed=lambda e: self._armed((False, str(e))), executor=self._serial)
        self.resume_timer.start()

    def _arm(self, bindings: dict[str, str]) -> tuple[bool, str | None]:
        factory = self._factory
        if factory == "auto":
            factory = default_backend_factory()
        if factory is None:
            self.backend = None
            return False, trigger_instructions(bindings)
        if self.backend is None:
            self.backend = factory(self._pressed, self.bridge.hotkey_released.emit)
        usable = {a: c for a, c in bindings.items() if c and check_bindings(bindings).get(a) is None}
        ok = self.backend.start(usable)
        if self._stopped:  # the app quit while this was arming
            self.backend.stop()
            return False, "stopped"
        if not ok:
            return False, (self.backend.error or "global hotkeys could not start") + "\n" + trigger_instructions(bindings)
        pressed, released = self.backend.probe()
        if not pressed:
            return False, ("the keyboard listener started but saw no key events (on macOS allow "
                           "Deskmind under Privacy → Accessibility)\n" + trigger_instructions(bindings))
        return True, None

    def _pressed(self, action: str) -> None:
        """The backend's thread: hand the press on unless a settings field is capturing keys
        (a release always goes on: it can only end what a press before the capture began)."""
        if self.capturing:
            log.debug("hotkey %s ignored: a settings field is capturing keys", action)
            return
        self.bridge.hotkey_pressed.emit(action)

    def _arm_and_describe(self, bindings: dict[str, str]) -> tuple[bool, str | None, str]:
        ok, why = self._arm(bindings)
        describe = self.describe_delivery
        return ok, why, (describe() if describe is not None and bindings.get("dictate") else "")

    def _armed(self, result: tuple) -> None:
        ok, why = result[0], result[1]
        delivery = result[2] if len(result) > 2 else ""
        self.instructions = why
        problems = check_bindings(self.bindings)
        release = bool(self.backend is not None and self.backend.release_seen)
        statuses = []
        for action, combo in self.bindings.items():
            if not combo:
                statuses.append(HotkeyStatus(action, combo, False, "off", "disabled"))
            elif problems.get(action):
                statuses.append(HotkeyStatus(action, combo, False, "off", problems[action] or ""))
            elif not ok:
                detail = (why or "").splitlines()[0] + f"; bind 'deskmind trigger {action}'"
                if action == "dictate" and delivery:
                    detail += f"; {delivery}"
                statuses.append(HotkeyStatus(action, combo, False, "off", detail))
            else:
                mode = "hold" if (release and self.talk_mode != "toggle") else "toggle"
                if action not in TALK_ACTIONS:
                    mode = "toggle"
                detail = f"armed ({self.backend.name})"
                if action in TALK_ACTIONS:
                    detail += ("; key-up seen, so hold to talk" if mode == "hold"
                               else "; no key-up events seen, so press once to start and again to stop")
                if action == "dictate" and delivery:
                    detail += f"; {delivery}"
                statuses.append(HotkeyStatus(action, combo, True, mode, detail))
        self.statuses = statuses
        self.checked.emit(statuses)

    def self_check(self) -> None:
        """Re-run the check (settings' button); result arrives through ``checked``."""
        self.start()

    def rebind(self, bindings: dict[str, str], talk_mode: str | None = None) -> None:
        """Apply new bindings live."""
        self.bindings = dict(bindings)
        if talk_mode:
            self.talk_mode = talk_mode
        self.start()

    def talk_is_hold(self, action: str = "talk") -> bool:
        for s in self.statuses:
            if s.action == action:
                return s.mode == "hold"
        return False

    def status_for(self, action: str) -> HotkeyStatus | None:
        return next((s for s in self.statuses if s.action == action), None)

    # -- sleep / resume ------------------------------------------------------------------------

    def check_resume(self) -> bool:
        """Wall time runs on during suspend, the monotonic clock does not: a gap means we slept."""
        wall, mono = self._clock(), self._mono()
        jump = (wall - self._last[0]) - (mono - self._last[1])
        self._last = (wall, mono)
        if abs(jump) > RESUME_JUMP_S:
            log.info("clock jumped %.0f s (sleep/resume): re-arming hotkeys", jump)
            self.rearmed += 1
            self.start()
            return True
        return False

    def stop(self) -> None:
        self._stopped = True
        self.resume_timer.stop()
        if self.backend is not None:
            self.backend.stop()
        self._serial.shutdown(wait=False, cancel_futures=True)
