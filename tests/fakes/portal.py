"""A private D-Bus session bus, and a desktop portal on it that speaks the real
``org.freedesktop.portal.GlobalShortcuts`` interface (version 1).

The fake answers as xdg-desktop-portal does: each call returns a Request object path built from
the caller's unique name and its ``handle_token``, then a ``org.freedesktop.portal.Request.Response``
signal is sent to the caller on that path; shortcuts fire ``Activated``/``Deactivated`` signals
on the portal object, addressed to the session's owner. Nothing here is Deskmind's code.
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

BUS_NAME = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
IFACE = "org.freedesktop.portal.GlobalShortcuts"
REQUEST_IFACE = "org.freedesktop.portal.Request"

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def dbus_daemon_available() -> bool:
    return shutil.which("dbus-daemon") is not None


class SessionBus:
    """A dbus-daemon of our own (no service activation: nothing but what the test starts)."""

    def __init__(self, folder: Path) -> None:
        config = folder / "bus.conf"
        config.write_text(_CONFIG.format(socket=folder / "bus"), encoding="utf-8")
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork",
                                      "--print-address=1"], stdout=subprocess.PIPE, text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            self.close()
            raise RuntimeError("dbus-daemon did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _escape(unique_name: str) -> str:
    return unique_name[1:].replace(".", "_")


class FakeGlobalShortcutsPortal:
    """Serves the portal on ``bus`` from a thread; records every call in ``calls``."""

    def __init__(self, bus_address: str, version: int = 1) -> None:
        self.conn = open_dbus_connection(bus_address)
        reply = self.conn.send_and_get_reply(message_bus.RequestName(BUS_NAME))
        assert reply.body[0] == 1, "could not own the portal's name"
        self.version = version
        self.calls: list[tuple[str, tuple]] = []
        self.sessions: dict[str, str] = {}           # session handle -> owner's unique name
        self.bound: dict[str, list[str]] = {}        # session handle -> shortcut ids
        self._todo: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-portal", daemon=True)
        self._thread.start()

    # -- the test's side ----------------------------------------------------------------------

    def wait_bound(self, timeout: float = 10.0) -> tuple[str, list[str]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.bound:
                return next(iter(self.bound.items()))
            time.sleep(0.02)
        raise TimeoutError("nothing bound shortcuts")

    def press(self, session: str, shortcut: str) -> None:
        self._todo.put(("Activated", session, shortcut))

    def release(self, session: str, shortcut: str) -> None:
        self._todo.put(("Deactivated", session, shortcut))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()

    # -- the bus side -------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            while not self._todo.empty():
                member, session, shortcut = self._todo.get()
                self._signal(PATH, IFACE, member, "osta{sv}",
                             (session, shortcut, int(time.time() * 1000), {}), self.sessions[session])
            try:
                msg = self.conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            if msg.header.message_type is MessageType.method_call:
                self._call(msg)

    def _call(self, msg: Any) -> None:
        fields = msg.header.fields
        member, iface = fields.get(HeaderFields.member), fields.get(HeaderFields.interface)
        sender = fields.get(HeaderFields.sender)
        self.calls.append((member, msg.body))
        if iface == "org.freedesktop.DBus.Properties" and member == "Get":
            if msg.body == (IFACE, "version"):
                self.conn.send(new_method_return(msg, "v", (("u", self.version),)))
            else:
                self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.InvalidArgs", "s",
                                         ("no such property",)))
            return
        if iface != IFACE:
            self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownInterface", "s", (str(iface),)))
            return
        if member == "CreateSession":
            (options,) = msg.body
            token = options["handle_token"][1]
            session = f"{PATH}/session/{_escape(sender)}/{options['session_handle_token'][1]}"
            self.sessions[session] = sender
            self._respond(msg, sender, token, {"session_handle": ("s", session)})
        elif member == "BindShortcuts":
            session, shortcuts, _parent, options = msg.body
            if self.sessions.get(session) != sender:
                self.conn.send(new_error(msg, "org.freedesktop.portal.Error.NotAllowed", "s",
                                         ("not your session",)))
                return
            ids = [sid for sid, _ in shortcuts]
            self.bound[session] = ids
            described = [(sid, {"description": props["description"],
                                "trigger_description": ("s", props.get("preferred_trigger", ("s", ""))[1])})
                         for sid, props in shortcuts]
            self._respond(msg, sender, options["handle_token"][1], {"shortcuts": ("a(sa{sv})", described)})
        else:
            self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (member,)))

    def _respond(self, msg: Any, sender: str, token: str, results: dict[str, Any]) -> None:
        request = f"{PATH}/request/{_escape(sender)}/{token}"
        self.conn.send(new_method_return(msg, "o", (request,)))
        self._signal(request, REQUEST_IFACE, "Response", "ua{sv}", (0, results), sender)

    def _signal(self, path: str, iface: str, member: str, signature: str, body: tuple,
                destination: str) -> None:
        sig = new_signal(DBusAddress(path, interface=iface), member, signature, body)
        sig.header.fields[HeaderFields.destination] = destination
        self.conn.send(sig)
