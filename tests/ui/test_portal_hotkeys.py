"""Wayland's global shortcuts through the desktop portal, on a real D-Bus session bus with a
portal that speaks the real org.freedesktop.portal.GlobalShortcuts interface."""

from __future__ import annotations

import pytest

from deskmind.ui.bridge import CoreBridge
from deskmind.ui.hotkeys.manager import HotkeyManager, default_backend_factory
from deskmind.ui.hotkeys.portal import PortalHotkeys, portal_version
from deskmind.ui.tasks import Workers
from tests.fakes.portal import FakeGlobalShortcutsPortal, SessionBus, dbus_daemon_available

pytestmark = pytest.mark.skipif(not dbus_daemon_available(),
                                reason="needs dbus-daemon (apt install dbus-daemon)")

BINDINGS = {"palette": "<ctrl>+<alt>+<space>", "talk": "<ctrl>+<alt>+j", "meeting": ""}
WAYLAND = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}


@pytest.fixture
def portal(tmp_path, monkeypatch):
    bus = SessionBus(tmp_path)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
    fake = FakeGlobalShortcutsPortal(bus.address)
    yield fake
    fake.close()
    bus.close()


def test_the_portal_binds_the_shortcuts_and_its_signals_press_and_release(portal):
    assert portal_version() == 1
    assert default_backend_factory(WAYLAND) is PortalHotkeys
    pressed: list[str] = []
    released: list[str] = []
    backend = PortalHotkeys(pressed.append, released.append)
    try:
        assert backend.start({a: c for a, c in BINDINGS.items() if c}) is True, backend.error
        assert backend.error is None and backend.bound == {"palette", "talk"}
        session, ids = portal.wait_bound()
        assert ids == ["palette", "talk"]
        (_, (options,)), (_, bind) = portal.calls[-2:]
        assert set(options) == {"handle_token", "session_handle_token"}
        assert [(sid, props["preferred_trigger"][1]) for sid, props in bind[1]] == [
            ("palette", "CTRL+ALT+space"), ("talk", "CTRL+ALT+j")]
        assert backend.probe() == (True, False)         # no key-up seen yet

        portal.press(session, "talk")
        portal.release(session, "talk")
        portal.press(session, "palette")
        wait_for(lambda: pressed == ["talk", "palette"] and released == ["talk"])
        assert backend.probe() == (True, True)          # this desktop reports key-ups: hold works
        # A signal for another session (another app's shortcuts) is not ours.
        portal.sessions["/other"] = portal.sessions[session]
        portal.press("/other", "talk")
        portal.press(session, "talk")
        wait_for(lambda: pressed == ["talk", "palette", "talk"])
    finally:
        backend.stop()


def test_the_hotkey_manager_arms_through_the_portal_and_emits_presses(qtbot, portal):
    bridge = CoreBridge()
    manager = HotkeyManager(bridge, Workers(bridge), BINDINGS, backend_factory=PortalHotkeys)
    try:
        with qtbot.waitSignal(manager.checked, timeout=15000) as sig:
            manager.start()
        st = {s.action: s for s in sig.args[0]}
        assert st["palette"].armed and st["talk"].armed and not st["meeting"].armed
        assert st["palette"].detail == "armed (xdg-portal)"
        session, _ = portal.wait_bound()
        with qtbot.waitSignal(bridge.hotkey_pressed, timeout=5000) as pressed:
            portal.press(session, "palette")
        assert pressed.args == ["palette"]
        with qtbot.waitSignal(bridge.hotkey_released, timeout=5000) as released:
            portal.release(session, "palette")
        assert released.args == ["palette"]
    finally:
        manager.stop()


def wait_for(condition, timeout: float = 5.0) -> None:
    import time

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the portal's signals")
        time.sleep(0.02)
