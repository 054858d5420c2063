"""MCP sessions over Streamable HTTP, bounded per client.

The SDK keeps each session (a server task, its streams) until the client deletes it or it
has been idle for a while, with one cap for everybody: one client opening sessions in a loop
could fill that cap and turn every other client away. Here each session belongs to the client
that opened it; a client has at most ``per_client`` of them (opening one more closes its least
recently used one), a session nobody used for ``idle_s`` is closed, and a client whose grant is
withdrawn loses all of its sessions, and the streams on them, within a poll.

Sessions are closed through the transport's own door: a ``DELETE`` for the session, sent to
the SDK's app as a client would send it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import anyio
from starlette.types import ASGIApp, Message

log = logging.getLogger(__name__)

SESSION_HEADER = "mcp-session-id"
POLL_SECONDS = 0.25


@dataclass
class _Session:
    client: str
    last_used: float
    in_flight: int = 0


class SessionTable:
    """Who owns which session, how recently each was used, and which must go. Used from the
    server's event loop only."""

    def __init__(self, per_client: int, idle_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_client = per_client
        self.idle_s = idle_s
        self.clock = clock
        self._sessions: dict[str, _Session] = {}
        self._of: dict[str, OrderedDict[str, None]] = {}  # least recently used first

    def __len__(self) -> int:
        return len(self._sessions)

    def owner(self, sid: str) -> str | None:
        s = self._sessions.get(sid)
        return s.client if s else None

    def of(self, client: str) -> list[str]:
        return list(self._of.get(client, ()))

    def clients(self) -> list[str]:
        return list(self._of)

    def add(self, sid: str, client: str) -> list[str]:
        """Record a new session; returns the client's sessions to close to stay within its
        cap (least recently used first, idle ones before those with a request in flight)."""
        self._sessions[sid] = _Session(client, self.clock())
        order = self._of.setdefault(client, OrderedDict())
        order[sid] = None
        excess = len(order) - self.per_client
        if excess <= 0:
            return []
        older = [s for s in order if s != sid]
        older.sort(key=lambda s: self._sessions[s].in_flight > 0)  # stable: LRU within each
        return older[:excess]

    def begin(self, sid: str) -> None:
        s = self._sessions.get(sid)
        if s is None:
            return
        s.in_flight += 1
        s.last_used = self.clock()
        self._of[s.client].move_to_end(sid)

    def end(self, sid: str) -> None:
        s = self._sessions.get(sid)
        if s is not None:
            s.in_flight = max(0, s.in_flight - 1)
            s.last_used = self.clock()

    def forget(self, sid: str) -> None:
        s = self._sessions.pop(sid, None)
        if s is None:
            return
        order = self._of.get(s.client)
        if order is not None:
            order.pop(sid, None)
            if not order:
                del self._of[s.client]

    def expired(self) -> list[str]:
        """Sessions with nothing in flight and unused for ``idle_s``."""
        cutoff = self.clock() - self.idle_s
        return [sid for sid, s in self._sessions.items() if not s.in_flight and s.last_used < cutoff]


class SessionKeeper:
    """Enforces a :class:`SessionTable` on the SDK's app: closes sessions beyond a client's
    cap, idle ones, and every session of a client that is no longer granted."""

    def __init__(self, app: ASGIApp, table: SessionTable, still_granted: Callable[[str], bool],
                 path: str = "/mcp", poll: float = POLL_SECONDS) -> None:
        self.app = app
        self.table = table
        self.still_granted = still_granted
        self.path = path
        self.poll = poll
        self.closed = 0

    async def close(self, sid: str, why: str) -> None:
        """End a session (its streams and any request in flight on it) as a DELETE would."""
        if self.table.owner(sid) is None:
            return  # closed already
        self.table.forget(sid)
        status: int | None = None

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "DELETE", "scheme": "http", "path": self.path,
                 "raw_path": self.path.encode(), "root_path": "", "query_string": b"",
                 "headers": [(b"host", b"127.0.0.1"), (SESSION_HEADER.encode(), sid.encode())],
                 "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0)}
        with anyio.CancelScope(shield=True):
            await self.app(scope, receive, send)
        self.closed += 1
        log.info("closed MCP session %s…: %s (%s)", sid[:8], why, status)

    async def sweep(self) -> None:
        """One pass: withdrawn clients' sessions, then idle ones."""
        for client in self.table.clients():
            if not self.still_granted(client):
                for sid in self.table.of(client):
                    await self.close(sid, f"client '{client}' is no longer granted")
        for sid in self.table.expired():
            await self.close(sid, f"unused for {self.table.idle_s:g} s")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Sweep every ``poll`` seconds while the server runs."""
        async def loop() -> None:
            while True:
                await anyio.sleep(self.poll)
                try:
                    await self.sweep()
                except Exception:  # a sweep that fails must not stop the next one
                    log.exception("could not close MCP sessions")

        async with anyio.create_task_group() as tg:
            tg.start_soon(loop)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
