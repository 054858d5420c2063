"""One Deskmind per person: later starts talk to the running one over a local socket.

The first ``deskmind`` listens on a QLocalServer named for the user and data folder; a second
``deskmind`` (or ``deskmind trigger palette|talk|meeting``, which is what a person binds in a
desktop whose global shortcuts apps cannot grab) connects, sends one JSON line and reads one
reply line.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

TRIGGERS = ("palette", "talk", "meeting")
CONNECT_TIMEOUT_MS = 500


def server_name(data_dir: Path) -> str:
    """Unique per user and data folder, so test runs with their own DESKMIND_HOME never meet."""
    digest = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:10]
    return f"deskmind-{getpass.getuser()}-{digest}"


def send_message(name: str, message: dict, timeout_ms: int = CONNECT_TIMEOUT_MS) -> dict | None:
    """Send one message to a running instance; its reply, or None when nothing is listening.

    Works without a running Qt event loop (blocking waits), so the CLI can call it.
    """
    sock = QLocalSocket()
    sock.connectToServer(name)
    if not sock.waitForConnected(timeout_ms):
        return None
    sock.write((json.dumps(message) + "\n").encode())
    sock.flush()
    data = b""
    while not data.endswith(b"\n"):
        if not sock.waitForReadyRead(timeout_ms * 4):
            break
        data += bytes(sock.readAll().data())
    sock.disconnectFromServer()
    try:
        return json.loads(data.decode() or "{}")
    except ValueError:
        return {"ok": False, "error": "the running Deskmind sent an unreadable reply"}


class InstanceServer(QObject):
    """Listens for later starts. ``message_received`` fires on the GUI thread."""

    message_received = Signal(dict)

    def __init__(self, name: str, handler: Callable[[dict], dict] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._handler = handler
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)

    def listen(self) -> bool:
        """Start listening; False if another live instance already owns the name.

        QLocalServer would silently take a name over, so first see whether anyone answers; a
        crashed instance leaves only a socket file behind, which is then removed.
        """
        if send_message(self.name, {"cmd": "ping"}, timeout_ms=200) is not None:
            return False
        QLocalServer.removeServer(self.name)
        return self._server.listen(self.name)

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            sock = self._server.nextPendingConnection()
            buf = bytearray()

            def ready(sock: QLocalSocket = sock, buf: bytearray = buf) -> None:
                buf.extend(bytes(sock.readAll().data()))
                if not buf.endswith(b"\n"):
                    return
                try:
                    msg = json.loads(buf.decode())
                    reply = self._dispatch(msg)
                except ValueError:
                    reply = {"ok": False, "error": "not a JSON message"}
                sock.write((json.dumps(reply) + "\n").encode())
                sock.flush()
                sock.disconnectFromServer()

            sock.readyRead.connect(ready)
            sock.disconnected.connect(sock.deleteLater)

    def _dispatch(self, msg: dict) -> dict:
        cmd = msg.get("cmd")
        if cmd == "ping":
            return {"ok": True}
        if cmd == "trigger" and msg.get("action") not in TRIGGERS:
            return {"ok": False, "error": f"unknown trigger '{msg.get('action')}'; use {', '.join(TRIGGERS)}"}
        if cmd not in ("trigger", "activate", "status"):
            return {"ok": False, "error": f"unknown command '{cmd}'"}
        self.message_received.emit(msg)
        return self._handler(msg) if self._handler else {"ok": True}
