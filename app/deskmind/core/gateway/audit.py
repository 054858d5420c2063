"""The gateway's audit log: every call a client makes and every memory item it was shown.

Writes are queued on the store's single writer and not waited for, so auditing adds no
latency to a request; :meth:`GatewayAudit.flush` waits for what is queued (tests, shutdown).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from deskmind.core.memory.api import Memory

log = logging.getLogger(__name__)

MAX_ARGS_CHARS = 300
_AGENT_DECISION = {"allowed": "allowed", "denied": "denied", "failed": "error"}


@dataclass
class AuditEntry:
    id: int
    ts: float
    client: str
    surface: str
    action: str
    args: str
    decision: str
    detail: str | None
    result_size: int
    items: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_args(args: dict[str, Any] | None) -> str:
    """A short, one-line summary of a call's arguments (long text is cut, not stored whole)."""
    if not args:
        return ""
    parts = []
    for k, v in args.items():
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        text = " ".join(str(text).split())
        parts.append(f"{k}={text[:80]}{'…' if len(text) > 80 else ''}")
    out = ", ".join(parts)
    return out[:MAX_ARGS_CHARS]


class GatewayAudit:
    """Record and list audit entries. Every method may be called from any thread."""

    def __init__(self, store: Memory, clock: Callable[[], float] = time.time,
                 mirror: Any = "auto") -> None:
        self.store = store
        self.clock = clock
        if mirror == "auto":
            try:
                from deskmind.core.agents.audit import AuditLog

                mirror = AuditLog(store)
            except ImportError:
                mirror = None
        self._mirror = mirror
        self._pending: list[Future] = []
        self._lock = threading.Lock()

    def record(self, client: str, surface: str, action: str, *, args: dict[str, Any] | None = None,
               decision: str = "allowed", detail: str | None = None, result_size: int = 0,
               items: Iterable[str] = ()) -> None:
        """``items`` name what the client was shown: ``chunk:<id>``, ``source:<id>``."""
        shown = sorted({str(i) for i in items})
        row = (self.clock(), client, surface, action, summarize_args(args), decision,
               (detail or None) and detail[:500], int(result_size), json.dumps(shown))
        mirror = self._mirror

        also: Callable[[], None] | None = None
        if mirror is not None:
            def mirror_entry() -> None:
                # The agents' log too, in the same transaction: `deskmind audit` lists every
                # agent, outside clients included (as client:<name>).
                reason = "; ".join(x for x in (detail or "", f"{surface}, shown {', '.join(shown)}"
                                               if shown else surface) if x)
                mirror.add(f"client:{client}", action, dict(args or {}),
                           _AGENT_DECISION.get(decision, decision), reason, int(result_size))

            also = mirror_entry

        fut = self.store.gateway_audit.submit(row, also)
        fut.add_done_callback(self._done)
        with self._lock:
            self._pending.append(fut)

    def _done(self, fut: Future) -> None:
        with self._lock:
            try:
                self._pending.remove(fut)
            except ValueError:
                pass
        exc = fut.exception()
        if exc is not None:
            # Losing an audit row must be visible: it is what the person relies on.
            log.error("could not write a gateway audit entry: %s", exc)

    def flush(self, timeout: float = 10.0) -> None:
        with self._lock:
            pending = list(self._pending)
        for fut in pending:
            try:
                fut.result(timeout=timeout)
            except Exception:  # already logged by _done
                pass

    def entries(self, *, client: str | None = None, limit: int = 200,
                since: float | None = None) -> list[AuditEntry]:
        rows = self.store.gateway_audit.entries(client=client, since=since, limit=limit)
        return [AuditEntry(*r[:9], items=json.loads(r[9] or "[]")) for r in rows]

    def items_read(self, client: str) -> list[str]:
        """Every item this client was shown, oldest first ("what did it read?")."""
        seen: dict[str, None] = {}
        for e in reversed(self.entries(client=client, limit=100_000)):
            if e.decision == "allowed":
                for i in e.items:
                    seen.setdefault(i, None)
        return list(seen)
