"""Agent scopes, least privilege by default, and the approval callback for dangerous actions.

An agent not described anywhere may do nothing. The shipped roles are described in
``routing.toml`` under ``[agents.NAME]``; :data:`BUILT_IN` is the fallback when that file
omits one.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from deskmind.core.routing.config import AgentConfig, RoutingConfig, privacy_rank

log = logging.getLogger(__name__)

BUILT_IN: dict[str, AgentConfig] = {
    "quick-ask": AgentConfig(name="quick-ask", memory_ceiling="private", write_memory=True,
                             tools=["search_memory", "list_sources", "read_file", "save_note",
                                    "run_command"]),
    "note-cleaner": AgentConfig(name="note-cleaner", memory_ceiling=None, write_memory=True),
    "meeting-minutes": AgentConfig(name="meeting-minutes", memory_ceiling="private",
                                   write_memory=True, tools=["search_memory", "save_note"]),
    # Types dictated text into the focused app; reads no memory and calls no tools, so nothing
    # dictated can act as a command.
    "dictation": AgentConfig(name="dictation", memory_ceiling=None, write_memory=True, paste=True),
}


def agent_config(cfg: RoutingConfig | None, name: str) -> AgentConfig:
    if cfg is not None and name in cfg.agents:
        return cfg.agents[name]
    return BUILT_IN.get(name, AgentConfig(name=name))


@dataclass
class ApprovalRequest:
    agent: str
    action: str  # shell | write | delete | cloud | paste
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


Approver = Callable[[ApprovalRequest], "bool | Awaitable[bool]"]


async def ask_approval(approver: Approver | None, req: ApprovalRequest) -> bool:
    """True only when someone explicitly said yes; nobody to ask means no."""
    if approver is None:
        return False
    try:
        answer = approver(req)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer is True
    except (EOFError, KeyboardInterrupt, asyncio.TimeoutError):
        return False


@dataclass
class Scopes:
    cfg: AgentConfig

    @property
    def name(self) -> str:
        return self.cfg.name

    def memory_ceiling(self, zone_ceiling: str) -> str | None:
        """The most sensitive tag this agent may read and hand to a model in that zone."""
        if self.cfg.memory_ceiling is None:
            return None
        return min(self.cfg.memory_ceiling, zone_ceiling, key=privacy_rank)

    def may_read_path(self, path: str) -> bool:
        return _under(path, self.cfg.read_paths)

    def may_write_path(self, path: str) -> bool:
        return _under(path, self.cfg.write_paths)


def _under(path: str, roots: list[str]) -> bool:
    try:
        real = Path(os.path.realpath(os.path.expanduser(path)))
    except (OSError, ValueError):
        return False
    for root in roots:
        r = Path(os.path.realpath(os.path.expanduser(root)))
        if real == r or r in real.parents:
            return True
    return False
