"""Global hotkeys with the real pynput X11 backend on the test display, keys sent by xdotool."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from deskmind.ui.bridge import CoreBridge
from deskmind.ui.hotkeys.manager import HotkeyManager, default_backend_factory
from deskmind.ui.hotkeys.portal import is_wayland, trigger_instructions
from deskmind.ui.tasks import Workers

needs_x = pytest.mark.skipif(not (os.environ.get("DISPLAY") and shutil.which("xdotool")),
                             reason="needs an X display (pytest-xvfb) and xdotool")

BINDINGS = {"palette": "<ctrl>+<alt>+<space>", "talk": "<ctrl>+<alt>+j", "meeting": ""}


@pytest.fixture
def manager(qtbot):
    bridge = CoreBridge()
    m = HotkeyManager(bridge, Workers(bridge), BINDINGS)
    yield m
    m.stop()


def xdotool(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, timeout=10)


@needs_x
def test_armed_self_check_and_hold_to_talk(qtbot, manager):
    with qtbot.waitSignal(manager.checked, timeout=15000) as sig:
        manager.start()
    st = {s.action: s for s in sig.args[0]}
    assert st["palette"].armed and st["talk"].armed
    assert st["talk"].mode == "hold" and "key-up seen" in st["talk"].detail
    assert st["meeting"].mode == "off" and st["meeting"].detail == "disabled"
    pressed, released = [], []
    manager.bridge.hotkey_pressed.connect(pressed.append)
    manager.bridge.hotkey_released.connect(released.append)
    xdotool("keydown", "ctrl+alt+j")
    qtbot.waitUntil(lambda: pressed == ["talk"], timeout=5000)
    assert released == []                           # still held
    xdotool("keyup", "ctrl+alt+j")
    qtbot.waitUntil(lambda: released == ["talk"], timeout=5000)
    xdotool("key", "--delay", "0", "ctrl+alt+space")
    qtbot.waitUntil(lambda: pressed == ["talk", "palette"], timeout=5000)
    xdotool("key", "--delay", "0", "ctrl+alt+k")     # not bound: nothing
    qtbot.wait(100)
    assert pressed == ["talk", "palette"]


@needs_x
def test_rebind_live_and_rearm_after_resume(qtbot, manager):
    now = [1000.0, 50.0]
    manager._clock, manager._mono = (lambda: now[0]), (lambda: now[1])
    manager._last = (now[0], now[1])
    with qtbot.waitSignal(manager.checked, timeout=15000):
        manager.start()
    now[0] += 5; now[1] += 5                        # an ordinary tick
    assert not manager.check_resume()
    now[0] += 3600; now[1] += 5                     # an hour of wall time, 5 s of monotonic: slept
    with qtbot.waitSignal(manager.checked, timeout=15000):
        assert manager.check_resume()
    assert manager.rearmed == 1
    pressed = []
    manager.bridge.hotkey_pressed.connect(pressed.append)
    with qtbot.waitSignal(manager.checked, timeout=15000):
        manager.rebind({"palette": "<ctrl>+<shift>+<f8>", "talk": "", "meeting": ""})
    xdotool("key", "--delay", "0", "ctrl+alt+space")           # old binding: gone
    xdotool("key", "--delay", "0", "ctrl+shift+F8")
    qtbot.waitUntil(lambda: pressed == ["palette"], timeout=5000)


def test_wayland_without_portal_explains_trigger_commands(qtbot, monkeypatch):
    env = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}
    assert is_wayland(env)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert default_backend_factory(env) is None      # no session bus here, so no portal
    bridge = CoreBridge()
    m = HotkeyManager(bridge, Workers(bridge), BINDINGS, backend_factory=None)
    with qtbot.waitSignal(m.checked, timeout=5000) as sig:
        m.start()
    st = {s.action: s for s in sig.args[0]}
    assert not st["palette"].armed and "deskmind trigger palette" in st["palette"].detail
    assert "deskmind trigger talk" in m.instructions and "Ctrl+Alt+J" in m.instructions
    assert "meeting" not in trigger_instructions({"meeting": ""})
    m.stop()


@needs_x
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the listener's death
def test_listener_that_cannot_reach_the_display_fails_fast(monkeypatch):
    """The X server refuses the listener's connection (as when it is out of client slots): arming
    reports it within the ready timeout instead of blocking for ever, and stop() returns."""
    import time

    import pynput.keyboard  # noqa: F401  the X11 backend is chosen at import, with the real display
    from deskmind.ui.hotkeys.pynput_backend import PynputHotkeys

    monkeypatch.setenv("DISPLAY", ":4093")         # no such display: every new connection fails
    backend = PynputHotkeys(lambda a: None, lambda a: None)
    backend.ready_timeout = 5.0
    t0 = time.monotonic()
    assert backend.start({"palette": "<ctrl>+<alt>+<space>"}) is False
    assert time.monotonic() - t0 < 5.0
    assert "stopped before it was ready" in backend.error
    assert not backend.running
    backend.stop()                                  # nothing to stop, and no hang
    assert backend.probe() == (False, False)
