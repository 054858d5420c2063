"""Global hotkeys through pynput (X11, Windows, macOS).

pynput is imported only when a listener starts: its backend is chosen at import and the X11 one
fails without a DISPLAY. The listener thread never touches Qt; it calls the plain callbacks it was
given (the bridge turns them into queued signals).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from deskmind.ui.hotkeys.combos import to_pynput

log = logging.getLogger(__name__)

Callback = Callable[[str], None]


class PynputHotkeys:
    """Watches the keyboard for the bound combinations; reports press and release per action."""

    name = "pynput"
    ready_timeout = 10.0

    def __init__(self, on_press: Callback, on_release: Callback,
                 keyboard_module: Any | None = None) -> None:
        self._on_press = on_press
        self._on_release = on_release
        self._kb = keyboard_module
        self._listener: Any = None
        self._combos: dict[str, frozenset] = {}
        self._down: set = set()
        self._active: set[str] = set()
        self._lock = threading.Lock()
        self._probe: tuple[Any, threading.Event, threading.Event] | None = None
        self._ctl: Any = None
        self.release_seen = False
        self.error: str | None = None

    def _keyboard(self) -> Any:
        if self._kb is None:
            import pynput.keyboard as kb  # lazily: needs a display on X11

            self._kb = kb
        return self._kb

    # -- lifecycle (any thread but the listener's) ------------------------------------------

    def start(self, bindings: dict[str, str]) -> bool:
        self.stop()
        try:
            kb = self._keyboard()
            listener = kb.Listener(on_press=self._press, on_release=self._release)
            combos = {}
            for action, combo in bindings.items():
                if combo:
                    combos[action] = frozenset(listener.canonical(k) for k in kb.HotKey.parse(to_pynput(combo)))
            self._combos = combos
            listener.start()
            self._wait_ready(listener)
        except Exception as exc:  # ImportError without a display, Xlib errors, macOS permissions
            self.error = f"global hotkeys are unavailable here ({type(exc).__name__}: {exc})"
            log.warning("%s", self.error)
            self._listener = None
            return False
        self._listener = listener
        self.error = None
        return True

    def _wait_ready(self, listener: Any) -> None:
        """Wait until the listener is ready, or fail if its thread died or never got there.

        pynput's ``wait()`` has no timeout: when the listener thread dies before it is ready (the
        X server refused the connection, say) it blocks for ever, and so would this arming thread
        and, at exit, the interpreter that joins it. The wait runs in a daemon thread instead.
        """
        ready = threading.Event()
        threading.Thread(target=lambda: (listener.wait(), ready.set()), daemon=True,
                         name="deskmind-hotkeys-ready").start()
        deadline = time.monotonic() + self.ready_timeout
        while not ready.wait(0.02):
            if not listener.is_alive():
                raise RuntimeError("the keyboard listener stopped before it was ready "
                                   "(could not connect to the display?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the keyboard listener was not ready after {self.ready_timeout:.0f} s")

    def _controller(self) -> Any:
        """One key injector per backend (each pynput Controller holds a display connection)."""
        if self._ctl is None:
            self._ctl = self._keyboard().Controller()
        return self._ctl

    def _tap_shift(self) -> None:
        kb = self._keyboard()
        ctl = self._controller()
        ctl.press(kb.Key.shift)
        ctl.release(kb.Key.shift)

    def stop(self) -> None:
        # Only listeners that became ready are kept, so stop() cannot block on a dead one
        # (pynput's stop waits for readiness, for ever).
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
            # On X11 the record thread only notices the stop on the next input event: send it a
            # harmless Shift tap so it ends now rather than at some later keypress (or when the
            # display goes away, with an error).
            try:
                self._tap_shift()
            except Exception:
                pass
        with self._lock:
            self._down.clear()
            self._active.clear()

    @property
    def running(self) -> bool:
        return self._listener is not None and self._listener.is_alive()

    def probe(self, timeout: float = 1.0) -> tuple[bool, bool]:
        """Inject a lone Shift tap; (press seen, release seen) by the listener. Blocking.

        A Shift tap types nothing in any app. Seeing the press proves global events arrive (the
        hotkeys are armed); seeing the release proves hold-to-talk can work.
        """
        if not self.running:
            return False, False
        kb = self._keyboard()
        pressed, released = threading.Event(), threading.Event()
        self._probe = (self._listener.canonical(kb.Key.shift), pressed, released)
        try:
            self._tap_shift()
            pressed.wait(timeout)
            released.wait(timeout if pressed.is_set() else 0)
        except Exception as exc:
            log.warning("hotkey self-check could not inject a key: %s", exc)
        finally:
            self._probe = None
        if released.is_set():
            self.release_seen = True
        return pressed.is_set(), released.is_set()

    # -- listener thread ----------------------------------------------------------------------

    def _press(self, key: Any) -> None:
        listener = self._listener
        if listener is None or key is None:
            return
        k = listener.canonical(key)
        probe = self._probe
        if probe is not None and k == probe[0]:
            probe[1].set()
        fire = []
        with self._lock:
            self._down.add(k)
            for action, keys in self._combos.items():
                if action not in self._active and k in keys and keys <= self._down:
                    self._active.add(action)
                    fire.append(action)
        for action in fire:
            self._on_press(action)

    def _release(self, key: Any) -> None:
        listener = self._listener
        if listener is None or key is None:
            return
        k = listener.canonical(key)
        probe = self._probe
        if probe is not None and k == probe[0]:
            probe[2].set()
        self.release_seen = True
        fire = []
        with self._lock:
            self._down.discard(k)
            for action in list(self._active):
                if k in self._combos.get(action, ()):
                    self._active.discard(action)
                    fire.append(action)
        for action in fire:
            self._on_release(action)
