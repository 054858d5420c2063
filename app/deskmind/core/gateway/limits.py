"""What one program may hold of the gateway: connections and requests in flight.

Every local program reaches the gateway from 127.0.0.1 (or any 127.x.y.z it likes), so a cap
per peer address alone cannot keep one program from crowding out the others. Instead:

- an open connection that is not being answered (waiting for a request head, or idle between
  requests) is cheap to take back: when the connection caps are reached, the connection idle
  the longest is closed to make room for the new one, so a pile of idle sockets only ever
  pushes out its own oldest members, and a newly connected client always gets in;
- limits on work count requests being answered, never sockets: a global cap that protects
  the process and a smaller one per client so that one client cannot take all of it.

Both tables are used from the server's event loop thread only.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Generic, Hashable, TypeVar

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Hashable)


@dataclass(frozen=True)
class ConnectionLimits:
    """The socket-level settings of one HTTP server (see ``[gateway]`` in settings.toml)."""

    header_timeout_s: float = 5.0   # from opening to a complete first request head
    keep_alive_s: float = 5.0       # from an answer to the next complete request head
    max_connections: int = 256
    max_connections_per_peer: int = 192

    @classmethod
    def from_config(cls, cfg: object) -> "ConnectionLimits":
        return cls(**{f: getattr(cfg, f) for f in cls.__dataclass_fields__ if hasattr(cfg, f)})


class ConnectionTable(Generic[C]):
    """Open connections, which of them are idle, and who must go to make room."""

    def __init__(self, max_total: int, max_per_peer: int) -> None:
        self.max_total = max_total
        self.max_per_peer = max_per_peer
        self._peer: dict[C, str] = {}
        self._per_peer: Counter[str] = Counter()
        # Idle connections, the one idle the longest first; globally and per peer.
        self._idle: OrderedDict[C, None] = OrderedDict()
        self._idle_of: dict[str, OrderedDict[C, None]] = {}
        self.evicted = 0   # connections closed to make room
        self.refused = 0   # connections refused because every other one was busy

    def __len__(self) -> int:
        return len(self._peer)

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    def opened(self, conn: C, peer: str) -> list[C] | None:
        """Admit ``conn`` (idle until its first request head arrives). Returns the idle
        connections the caller must close to make room, or None when there is no room: every
        connection it would replace is busy answering a request."""
        victims: list[C] = []
        if self._per_peer[peer] >= self.max_per_peer:
            victim = next(iter(self._idle_of.get(peer, ())), None)
            if victim is None:
                self.refused += 1
                return None
            victims.append(victim)
        if len(self._peer) - len(victims) >= self.max_total:
            victim = next((c for c in self._idle if c not in victims), None)
            if victim is None:
                self.refused += 1
                return None
            victims.append(victim)
        for v in victims:
            self.closed(v)
        self.evicted += len(victims)
        self._peer[conn] = peer
        self._per_peer[peer] += 1
        self.idle(conn)
        return victims

    def busy(self, conn: C) -> None:
        """A request on ``conn`` is being answered: it is not taken back to make room."""
        peer = self._peer.get(conn)
        if peer is None:
            return
        self._idle.pop(conn, None)
        self._idle_of.get(peer, OrderedDict()).pop(conn, None)

    def idle(self, conn: C) -> None:
        """``conn`` waits for a request (it becomes the most recently idle)."""
        peer = self._peer.get(conn)
        if peer is None:
            return
        self._idle.pop(conn, None)
        self._idle[conn] = None
        of_peer = self._idle_of.setdefault(peer, OrderedDict())
        of_peer.pop(conn, None)
        of_peer[conn] = None

    def closed(self, conn: C) -> None:
        peer = self._peer.pop(conn, None)
        if peer is None:
            return
        self._idle.pop(conn, None)
        of_peer = self._idle_of.get(peer)
        if of_peer is not None:
            of_peer.pop(conn, None)
            if not of_peer:
                del self._idle_of[peer]
        self._per_peer[peer] -= 1
        if self._per_peer[peer] <= 0:
            del self._per_peer[peer]


class InFlight:
    """Requests being answered: at most ``max_total`` in all and ``max_per_client`` each."""

    def __init__(self, max_total: int, max_per_client: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.total = 0
        self._of: Counter[str] = Counter()

    def enter(self, client: str) -> str | None:
        """None when the request may go ahead (call :meth:`leave` when it ends), else
        ``"client"`` or ``"total"``: which cap is full."""
        if self._of[client] >= self.max_per_client:
            return "client"
        if self.total >= self.max_total:
            return "total"
        self._of[client] += 1
        self.total += 1
        return None

    def leave(self, client: str) -> None:
        self.total -= 1
        self._of[client] -= 1
        if self._of[client] <= 0:
            del self._of[client]

    def of(self, client: str) -> int:
        return self._of.get(client, 0)
