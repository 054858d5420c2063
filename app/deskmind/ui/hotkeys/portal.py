"""Wayland: global shortcuts through the XDG desktop portal, or instructions when it is absent.

Wayland gives apps no way to watch the keyboard; the ``org.freedesktop.portal.GlobalShortcuts``
portal (GNOME 48+, KDE Plasma 6, Hyprland) lets the person approve shortcuts for an app. Where it
is missing, the person binds ``deskmind trigger palette|talk|meeting|dictate`` in their desktop's keyboard
settings; that command reaches the running app over the local socket.

The portal conversation runs on its own thread with jeepney's blocking D-Bus connection (jeepney
already comes with keyring); like the pynput listener, the thread only calls plain callbacks.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from typing import Any, Callable

from deskmind.ui.hotkeys.combos import display

log = logging.getLogger(__name__)

PORTAL_BUS = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
IFACE = "org.freedesktop.portal.GlobalShortcuts"
DESCRIPTIONS = {"palette": "Open the Deskmind palette", "talk": "Push to talk (voice note)",
                "meeting": "Start or stop a meeting recording",
                "dictate": "Dictate: type what you say into the focused app"}


def is_wayland(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("XDG_SESSION_TYPE") == "wayland" or (
        bool(env.get("WAYLAND_DISPLAY")) and not env.get("DISPLAY"))


def trigger_instructions(bindings: dict[str, str]) -> str:
    lines = ["This desktop does not let apps grab global shortcuts. In its keyboard settings,",
             "add custom shortcuts that run these commands:"]
    for action, combo in bindings.items():
        if combo:
            lines.append(f"  {display(combo):22} deskmind trigger {action}")
    return "\n".join(lines)


def portal_version(timeout: float = 1.0) -> int | None:
    """The GlobalShortcuts portal's version, or None when there is no session bus or portal."""
    try:
        from jeepney import DBusAddress, Properties
        from jeepney.io.blocking import open_dbus_connection

        conn = open_dbus_connection(bus="SESSION")
    except Exception:
        return None
    try:
        addr = DBusAddress(PORTAL_PATH, bus_name=PORTAL_BUS, interface=IFACE)
        reply = conn.send_and_get_reply(Properties(addr).get("version"), timeout=timeout)
        if reply.header.message_type.name == "error":
            return None
        return int(reply.body[0][1])
    except Exception:
        return None
    finally:
        conn.close()


class PortalHotkeys:
    """Binds the shortcuts through the portal; Activated/Deactivated become press/release."""

    name = "xdg-portal"

    def __init__(self, on_press: Callable[[str], None], on_release: Callable[[str], None]) -> None:
        self._on_press = on_press
        self._on_release = on_release
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.release_seen = False
        self.error: str | None = None
        self.bound: set[str] = set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, bindings: dict[str, str]) -> bool:
        self.stop()
        ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(bindings, ready, self._stop),
                                        name="deskmind-portal-hotkeys", daemon=True)
        self._thread.start()
        ready.wait(30)  # the portal may show the person an approval dialog first
        return self.running and not self.error

    def stop(self) -> None:
        self._stop.set()
        self._thread = None

    def probe(self, timeout: float = 1.0) -> tuple[bool, bool]:
        # The portal delivers Deactivated when the desktop supports it; only use shows it.
        return self.running, self.release_seen

    def _run(self, bindings: dict[str, str], ready: threading.Event, stop: threading.Event) -> None:
        try:
            from jeepney import DBusAddress, MatchRule, new_method_call
            from jeepney.io.blocking import open_dbus_connection

            conn = open_dbus_connection(bus="SESSION")
            portal = DBusAddress(PORTAL_PATH, bus_name=PORTAL_BUS, interface=IFACE)
            sender = conn.unique_name[1:].replace(".", "_")

            def request(method: str, signature: str, body: tuple, token: str) -> dict[str, Any]:
                path = f"/org/freedesktop/portal/desktop/request/{sender}/{token}"
                rule = MatchRule(type="signal", interface="org.freedesktop.portal.Request",
                                 member="Response", path=path)
                with conn.filter(rule) as queue:
                    conn.send_and_get_reply(new_method_call(portal, method, signature, body))
                    msg = conn.recv_until_filtered(queue, timeout=60)
                code, results = msg.body
                if code != 0:
                    raise RuntimeError(f"{method} was refused (response {code})")
                return {k: v[1] for k, v in results.items()}

            tok = "deskmind" + secrets.token_hex(4)
            session = request("CreateSession", "a{sv}", ({
                "handle_token": ("s", tok), "session_handle_token": ("s", tok + "s")},), tok)["session_handle"]
            shortcuts = [(action, {"description": ("s", DESCRIPTIONS.get(action, action)),
                                   "preferred_trigger": ("s", _portal_trigger(combo))})
                         for action, combo in bindings.items() if combo]
            tok2 = "deskmind" + secrets.token_hex(4)
            res = request("BindShortcuts", "oa(sa{sv})sa{sv}",
                          (session, shortcuts, "", {"handle_token": ("s", tok2)}), tok2)
            self.bound = {sid for sid, _ in res.get("shortcuts", [])} or {a for a, _ in shortcuts}
            ready.set()
            rule = MatchRule(type="signal", interface=IFACE, path=PORTAL_PATH)
            with conn.filter(rule) as queue:
                while not stop.is_set():
                    try:
                        msg = conn.recv_until_filtered(queue, timeout=0.5)
                    except TimeoutError:
                        continue
                    if msg.body and msg.body[0] != session:
                        continue
                    if msg.header.fields.get(3) == "Activated":  # 3 = MEMBER header field
                        self._on_press(msg.body[1])
                    elif msg.header.fields.get(3) == "Deactivated":
                        self.release_seen = True
                        self._on_release(msg.body[1])
            conn.close()
        except Exception as exc:
            self.error = f"the desktop portal refused global shortcuts ({exc})"
            log.warning("%s", self.error)
            ready.set()


def _portal_trigger(combo: str) -> str:
    """Portal triggers follow the XDG shortcuts spec: ``CTRL+ALT+j``."""
    from deskmind.ui.hotkeys.combos import normalize

    names = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "cmd": "LOGO"}
    return "+".join(names.get(p, p) for p in normalize(combo).split("+"))
