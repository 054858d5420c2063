"""uvicorn's HTTP/1.1 protocol with deadlines and room-making for idle connections.

uvicorn (0.55) has a keep-alive timeout, but it is armed only after an answer and any byte
re-arms it, so a peer that opens a socket and sends nothing, or trickles a request head a byte
at a time, holds its connection for ever; and its ``limit_concurrency`` counts sockets, so a
few hundred idle ones turned every client away with 503. Here each connection must deliver a
complete request head within ``header_timeout_s`` of opening (``keep_alive_s`` of its previous
answer), and the :class:`~deskmind.core.gateway.limits.ConnectionTable` closes the connection
idle the longest when the caps are reached. Work is limited per request by the HTTP guard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from typing import Any

try:
    import fcntl
    import termios

    _FIONREAD: int | None = termios.FIONREAD
except ImportError:  # Windows: connections are taken back oldest first, without asking
    _FIONREAD = None

from uvicorn.protocols.http.h11_impl import H11Protocol

from deskmind.core.gateway.limits import ConnectionLimits, ConnectionTable

log = logging.getLogger(__name__)

_BUSY_BODY = (b'{"error": {"message": "every connection is busy: retry in a moment", '
              b'"type": "overloaded", "code": "overloaded"}}')
_BUSY_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
             b"connection: close\r\nretry-after: 1\r\ncontent-length: "
             + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


# Descriptors kept for everything but connections: the database, models, log files, pipes.
SPARE_DESCRIPTORS = 256


def fit_descriptor_limit(limits: ConnectionLimits) -> ConnectionLimits:
    """``limits``, after raising this process's soft limit on open files far enough for
    ``max_connections`` (macOS starts programs with 256); if the hard limit does not allow
    it, fewer connections, said in the log, rather than failing to accept at random later."""
    try:
        import resource
    except ImportError:  # Windows: no such per-process limit on sockets
        return limits
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = limits.max_connections + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the limit on open files (%s)", exc)
    if soft != resource.RLIM_INFINITY and soft < want:
        fit = max(16, soft - SPARE_DESCRIPTORS)
        log.warning("this process may open only %d files: the gateway keeps at most %d "
                    "connections instead of %d", soft, fit, limits.max_connections)
        return dataclasses.replace(limits, max_connections=fit,
                                   max_connections_per_peer=min(fit, limits.max_connections_per_peer))
    return limits


def _bytes_waiting(conn: H11Protocol) -> bool:
    """Whether the peer already sent bytes the event loop has not read yet (a request on its
    way: under a flood of connections, accepting can run ahead of reading)."""
    sock = conn.transport.get_extra_info("socket") if conn.transport else None
    if sock is None or _FIONREAD is None:
        return False
    try:
        waiting = fcntl.ioctl(sock.fileno(), _FIONREAD, b"\0\0\0\0")
    except OSError:
        return False
    return int.from_bytes(waiting, sys.byteorder) > 0


def guarded_protocol(limits: ConnectionLimits,
                     table: ConnectionTable[Any] | None = None) -> type[H11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)``, sharing one table of connections."""
    shared: ConnectionTable[Any] = table or ConnectionTable(limits.max_connections,
                                                            limits.max_connections_per_peer)

    class GuardedH11Protocol(H11Protocol):
        connections_table = shared

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline: asyncio.TimerHandle | None = None
            self._answering = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peer = self.client[0] if self.client else ""
            victims = shared.opened(self, peer, speaking=_bytes_waiting)
            if victims is None:
                log.warning("refused a connection from %s: all %d connections are busy",
                            peer, len(shared))
                transport.write(_BUSY_503)
                transport.close()
                return
            for v in victims:
                v.drop("closed to make room for a new connection")
            self._wait_for_head(limits.header_timeout_s)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._note_state()

        def on_response_complete(self) -> None:
            super().on_response_complete()  # may start a pipelined request at once
            if self.transport.is_closing():
                return
            self._answering = False
            self._note_state()
            if not self._answering:
                shared.idle(self, kept=True)
                self._wait_for_head(limits.keep_alive_s)

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_deadline()
            shared.closed(self)
            super().connection_lost(exc)

        def _note_state(self) -> None:
            """A request head just arrived: the connection is busy until it is answered."""
            if self._answering or self.cycle is None or self.cycle.response_complete:
                return
            self._answering = True
            self._cancel_deadline()
            shared.busy(self)

        def _wait_for_head(self, seconds: float) -> None:
            self._cancel_deadline()
            self._deadline = self.loop.call_later(seconds, self.drop, "no complete request in time")

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def drop(self, why: str) -> None:
            """Close an idle connection (nothing is being answered on it)."""
            if self._answering or self.transport.is_closing():
                return
            log.debug("closing the connection from %s: %s", self.client, why)
            self._cancel_deadline()
            shared.closed(self)
            self.transport.close()

    return GuardedH11Protocol
