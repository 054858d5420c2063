"""The egress ledger: every request that leaves the machine zone, recorded before it is sent.

Rows live in the memory database (``egress_ledger``). :meth:`EgressLedger.record` commits
before returning, so a crash between recording and sending leaves a row marked ``sending``
rather than a request nobody knows about.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from deskmind.core.memory.api import Memory

log = logging.getLogger(__name__)


@dataclass
class EgressEntry:
    id: int
    at: float
    provider: str
    host: str
    zone: str
    model: str
    rule: str
    bytes_out: int
    bytes_in: int | None
    body_sha256: str
    item_ids: list[int]
    status: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EgressLedger:
    """Implements :class:`deskmind.core.runtimes.http.EgressRecorder`. Blocking calls: the
    transport runs them in a worker thread."""

    def __init__(self, store: Memory, zone_of: dict[str, str] | None = None) -> None:
        self.store = store
        self.zone_of = zone_of or {}

    def record(self, *, provider: str, host: str, model: str, rule: str, body: bytes,
               item_ids: Sequence[int]) -> int:
        row = (time.time(), provider, host, self.zone_of.get(provider, "cloud"), model, rule,
               len(body), hashlib.sha256(body).hexdigest(), json.dumps(sorted(set(item_ids))))
        return self.store.egress.add(row)

    def finish(self, entry_id: int, *, bytes_in: int, status: str) -> None:
        self.store.egress.finish(entry_id, bytes_in=bytes_in, status=status)

    def entries(self, limit: int = 1000, since: float | None = None) -> list[EgressEntry]:
        rows = self.store.egress.entries(limit, since)
        return [EgressEntry(*r[:10], item_ids=json.loads(r[10]), status=r[11]) for r in reversed(rows)]

    def count(self) -> int:
        return self.store.egress.count()
