"""What one program may hold of the gateway: connections and requests in flight.

Every local program reaches the gateway from 127.0.0.1 (or any 127.x.y.z it likes), so a cap
per peer address alone cannot keep one program from crowding out the others. Instead:

- an open connection that is not being answered (waiting for a request head, or idle between
  requests) is cheap to take back: when the connection caps are reached, an idle one is
  closed to make room for the new one (never answered before those kept alive after an
  answer, the one idle the longest first), so a pile of idle sockets only ever pushes out its
  own oldest members, and a newly connected client always gets in;
- limits on work count requests being answered, never sockets: a global cap that protects
  the process and a smaller one per client so that one client cannot take all of it.

Both tables are used from the server's event loop thread only.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable, Generic, Hashable, TypeVar

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Hashable)
PEEK = 32  # idle connections asked whether they have bytes waiting, when making room


@dataclass(frozen=True)
class ConnectionLimits:
    """The socket-level settings of one HTTP server (see ``[gateway]`` in settings.toml)."""

    header_timeout_s: float = 5.0   # from opening to a complete first request head
    keep_alive_s: float = 5.0       # from an answer to the next complete request head
    max_connections: int = 512
    max_connections_per_peer: int = 384

    @classmethod
    def from_config(cls, cfg: object) -> "ConnectionLimits":
        return cls(**{f: getattr(cfg, f) for f in cls.__dataclass_fields__ if hasattr(cfg, f)})


class ConnectionTable(Generic[C]):
    """Open connections, which of them are idle, and who must go to make room.

    Idle connections come in two kinds: *fresh* ones that have not been answered yet (a
    socket opened and left silent costs its opener nothing) and *kept* ones idle between
    requests after an answer (the door closes a connection after refusing a request without a
    valid token, so these belong to clients that had one). Fresh ones go first, each kind the
    one idle the longest first."""

    def __init__(self, max_total: int, max_per_peer: int) -> None:
        self.max_total = max_total
        self.max_per_peer = max_per_peer
        self._peer: dict[C, str] = {}
        self._per_peer: Counter[str] = Counter()
        # (kept?, conn) of idle connections in the order they became idle; globally and per peer.
        self._idle: tuple[OrderedDict[C, None], OrderedDict[C, None]] = (OrderedDict(), OrderedDict())
        self._idle_of: dict[str, tuple[OrderedDict[C, None], OrderedDict[C, None]]] = {}
        self.evicted = 0   # connections closed to make room
        self.refused = 0   # connections refused because every other one was busy

    def __len__(self) -> int:
        return len(self._peer)

    @property
    def idle_count(self) -> int:
        return len(self._idle[0]) + len(self._idle[1])

    def opened(self, conn: C, peer: str,
               speaking: Callable[[C], bool] = lambda c: False) -> list[C] | None:
        """Admit ``conn`` (idle and fresh until its first request head arrives). Returns the
        idle connections the caller must close to make room, or None when there is no room:
        every connection it would replace is busy answering a request. ``speaking(c)`` says
        whether bytes from ``c`` are already waiting to be read: such a connection is about
        to be busy and is passed over while others can go."""
        victims: list[C] = []
        if self._per_peer[peer] >= self.max_per_peer:
            victim = _first(self._idle_of.get(peer, (OrderedDict(), OrderedDict())), victims,
                            speaking)
            if victim is None:
                self.refused += 1
                return None
            victims.append(victim)
        if len(self._peer) - len(victims) >= self.max_total:
            victim = _first(self._idle, victims, speaking)
            if victim is None:
                self.refused += 1
                return None
            victims.append(victim)
        for v in victims:
            self.closed(v)
        self.evicted += len(victims)
        self._peer[conn] = peer
        self._per_peer[peer] += 1
        self.idle(conn, kept=False)
        return victims

    def busy(self, conn: C) -> None:
        """A request on ``conn`` is being answered: it is not taken back to make room."""
        peer = self._peer.get(conn)
        if peer is None:
            return
        for order in (*self._idle, *self._idle_of.get(peer, ())):
            order.pop(conn, None)

    def idle(self, conn: C, kept: bool = True) -> None:
        """``conn`` waits for a request (it becomes the most recently idle of its kind)."""
        peer = self._peer.get(conn)
        if peer is None:
            return
        self.busy(conn)
        self._idle[kept][conn] = None
        self._idle_of.setdefault(peer, (OrderedDict(), OrderedDict()))[kept][conn] = None

    def closed(self, conn: C) -> None:
        peer = self._peer.pop(conn, None)
        if peer is None:
            return
        for order in self._idle:
            order.pop(conn, None)
        of_peer = self._idle_of.get(peer)
        if of_peer is not None:
            for order in of_peer:
                order.pop(conn, None)
            if not of_peer[0] and not of_peer[1]:
                del self._idle_of[peer]
        self._per_peer[peer] -= 1
        if self._per_peer[peer] <= 0:
            del self._per_peer[peer]


def _first(orders: tuple[OrderedDict[C, None], OrderedDict[C, None]], skip: list[C],
           speaking: Callable[[C], bool]) -> C | None:
    """The first fresh connection not in ``skip`` and not speaking, else the first kept one
    not speaking; failing those, the first one at all. Only the first ``PEEK`` candidates are
    asked (each asking is a system call)."""
    fallback = None
    asked = 0
    for order in orders:
        for c in order:
            if c in skip:
                continue
            if fallback is None:
                fallback = c
            if asked >= PEEK:
                return fallback
            asked += 1
            if not speaking(c):
                return c
    return fallback


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
