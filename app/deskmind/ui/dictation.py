"""The dictate key: hold, speak, release, and the words are typed where the cursor was.

The core's :class:`Dictation` does the work on the speech executor (press, release); this
controller follows the key, shows recording → transcribing → "typed N words" (or why not) in
the HUD, and lends the core the desktop clipboard through :class:`MainThreadClipboard`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from deskmind.core.errors import DeskmindError
from deskmind.ui.bridge import CoreBridge, on_gui_thread
from deskmind.ui.hud import TalkHud
from deskmind.ui.talk import HeldKey
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)

CLIPBOARD_TIMEOUT_S = 5.0


class MainThreadClipboard:
    """The desktop clipboard (every format kept and restored) for code on a worker thread:
    each call runs on the GUI thread, which owns the clipboard, and the worker waits for it."""

    def __init__(self, bridge: CoreBridge, timeout_s: float = CLIPBOARD_TIMEOUT_S) -> None:
        self.bridge = bridge
        self.timeout_s = timeout_s
        self._keeper: Any = None

    def _on_main(self, fn: Callable[[], Any]) -> Any:
        if on_gui_thread():
            return fn()
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except Exception as exc:  # handed to the waiting worker
                box["error"] = exc
            finally:
                done.set()

        self.bridge.run_on_main(run)
        if not done.wait(self.timeout_s):
            raise DeskmindError(f"the clipboard did not answer within {self.timeout_s:g} s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _k(self) -> Any:
        if self._keeper is None:
            from deskmind.ui.clipboard_keeper import ClipboardKeeper

            self._keeper = ClipboardKeeper()
        return self._keeper

    def save(self) -> None:
        self._on_main(lambda: self._k().save())

    def put_text(self, text: str) -> None:
        self._on_main(lambda: self._k().put_text(text))

    def restore(self) -> bool:
        return bool(self._on_main(lambda: self._k().restore()))

    def text(self) -> str:
        from PySide6.QtGui import QGuiApplication

        return str(self._on_main(lambda: QGuiApplication.clipboard().text()))


class DictationController(HeldKey):
    finished = Signal(object)            # DictationResult, once the text is delivered
    doing = "Dictating"
    cannot = "Cannot dictate"

    def __init__(self, make_dictation: Callable[..., Any], bridge: CoreBridge, workers: Workers,
                 hud: TalkHud, notify: Callable[[str, str], None] | None = None,
                 set_tray: Callable[[str], None] | None = None, parent: QObject | None = None) -> None:
        super().__init__("hold", hud, set_tray, parent)
        self.bridge, self.workers = bridge, workers
        self._make = make_dictation
        self._notify = notify or (lambda _t, _m: None)
        self.dictation: Any = None
        self.last: Any = None                # the last DictationResult

    # -- one dictation ------------------------------------------------------------------------

    def start(self, mode: str) -> None:
        pressed_at = time.monotonic()
        self._starting(mode)
        self.workers.submit(self._press, pressed_at, done=lambda _t: self._recording(),
                            failed=self._start_failed, executor=self.workers.speech)

    def prepare(self) -> None:
        """Build the dictation now, on the speech worker (it loads the speech engine's modules,
        a second or more), so the first key press starts recording at once."""
        self.workers.submit(self._ensure, failed=lambda e: log.info("dictation not ready: %s", e),
                            executor=self.workers.speech)

    def _ensure(self) -> Any:
        """Speech worker."""
        if self.dictation is None:
            self.dictation = self._make(on_level=self.bridge.on_level)
        return self.dictation

    def _press(self, pressed_at: float) -> Any:
        """Speech worker."""
        return self._ensure().press(pressed_at)

    def stop(self) -> None:
        if not self._stopping():
            return
        delivered = lambda r: self.bridge.run_on_main(self._delivered, r)  # noqa: E731
        self.workers.submit(self.dictation.release, delivered, done=self._done,
                            failed=self._failed, executor=self.workers.speech)

    def _delivered(self, result: Any) -> None:
        self.last = result
        self._set("idle")
        self.hud.toast(result.message[:1].upper() + result.message[1:])
        if result.text and not (result.delivery and result.delivery.delivered):
            self._notify("Dictation", result.message)
        self.finished.emit(result)

    def _done(self, result: Any) -> None:
        if self.state == "transcribing":   # nothing was delivered (no speech, no audio)
            self._delivered(result)
        for w in result.warnings:
            log.info("dictation: %s", w)

    def _failed(self, exc: BaseException) -> None:
        self._set("idle")
        self.hud.toast(f"Dictation failed: {exc}")

    def settings_changed(self) -> None:
        """Speech settings changed (GUI thread): the next dictation is built anew."""
        if self.state == "idle":
            self.dictation = None
            self.prepare()

    def shutdown(self) -> None:
        self._release.stop()
        if self.dictation is not None and self.state in ("starting", "recording"):
            self.dictation.cancel()
