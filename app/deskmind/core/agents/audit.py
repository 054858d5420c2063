"""The audit log of agent tool calls (table ``agent_audit`` in the memory database)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from deskmind.core.memory.api import Memory
from deskmind.core.secrets import redact

log = logging.getLogger(__name__)

SUMMARY_CHARS = 200


@dataclass
class AuditEntry:
    id: int
    at: float
    agent: str
    tool: str
    args_summary: str
    decision: str
    reason: str
    result_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_args(args: dict[str, Any]) -> str:
    text = json.dumps(args, ensure_ascii=False, sort_keys=True, default=str)
    text = redact(text)
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"


class AuditLog:
    def __init__(self, store: Memory) -> None:
        self.store = store

    def add(self, agent: str, tool: str, args: dict[str, Any], decision: str, reason: str = "",
            result_bytes: int = 0) -> int:
        row = (time.time(), agent, tool, summarize_args(args), decision, redact(reason)[:500], result_bytes)
        log.info("agent %s tool %s: %s %s", agent, tool, decision, reason)
        return self.store.agent_audit.add(row)

    def entries(self, limit: int = 1000, agent: str | None = None) -> list[AuditEntry]:
        return [AuditEntry(*r) for r in reversed(self.store.agent_audit.entries(limit, agent))]
