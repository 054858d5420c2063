"""The tools an agent may call through a runtime's tool API, each checked against its scopes.

Every call, whatever its outcome, lands in the audit log. A refused call returns a plain
refusal to the model (so it can carry on without it); nothing a model or a retrieved document
says can widen what the agent was granted. Shell, writes and deletes also need a person's
approval through the approval callback; nobody to ask means no.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from deskmind.core.agents.audit import AuditLog
from deskmind.core.agents.permissions import ApprovalRequest, Approver, Scopes, ask_approval
from deskmind.core.memory.models import PRIVACY_LEVELS, NewChunk, SourceDraft
from deskmind.core.routing.config import privacy_rank
from deskmind.core.runtimes.base import Tool, ToolCall

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024
MAX_OUTPUT = 8 * 1024
COMMAND_TIMEOUT = 20.0

TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("search_memory", "Search the person's memory (notes, files, meetings). Returns numbered "
         "passages with their source. Earlier saved answers are left out unless "
         "include_conversations is true.", {"type": "object", "properties": {
             "query": {"type": "string", "description": "what to look for"},
             "limit": {"type": "integer", "description": "how many passages (1-10)"},
             "include_conversations": {"type": "boolean",
                                       "description": "also search earlier saved answers"}},
             "required": ["query"]}),
    Tool("list_sources", "List the sources in memory (titles and kinds).", {
        "type": "object", "properties": {"limit": {"type": "integer"}}}),
    Tool("read_file", "Read a text file from a folder the person allowed.", {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    Tool("write_file", "Write a text file into a folder the person allowed (replaces the file "
         "if it exists).", {
             "type": "object", "properties": {"path": {"type": "string"},
                                              "text": {"type": "string"}},
             "required": ["path", "text"]}),
    Tool("save_note", "Save a note to the person's memory.", {
        "type": "object", "properties": {"title": {"type": "string"}, "text": {"type": "string"}},
        "required": ["title", "text"]}),
    Tool("run_command", "Run a shell command on the person's computer.", {
        "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
)}


@dataclass
class ToolResult:
    call: ToolCall
    content: str
    decision: str  # allowed | approved | denied | refused | error | failed
    item_ids: tuple[int, ...] = ()
    privacy: str = "public"


class ToolBox:
    """Runs tool calls for one agent answering through a model in one trust zone."""

    def __init__(self, scopes: Scopes, audit: AuditLog, *, zone_ceiling: str,
                 searcher: Any = None, store: Any = None,
                 remember: Callable[[SourceDraft], int] | None = None,
                 approver: Approver | None = None,
                 run_process: Callable[[list[str]], subprocess.CompletedProcess] | None = None,
                 external: Any = None, builtin: bool = True) -> None:
        self.scopes = scopes
        # Outside (MCP) tools, checked by their own gate (core/agents/mcp_gate.py).
        self.external = external
        self.builtin = builtin
        self.audit = audit
        self.zone_ceiling = zone_ceiling
        self.searcher = searcher
        self.store = store
        self.remember = remember
        self.approver = approver
        self.run_process = run_process or _run_process

    def offered(self) -> list[Tool]:
        """Tools this agent is configured to see (a tool offered may still be refused)."""
        own = [TOOLS[n] for n in self.scopes.cfg.tools if n in TOOLS] if self.builtin else []
        return own + (self.external.offered() if self.external is not None else [])

    async def call(self, call: ToolCall) -> ToolResult:
        args = call.arguments if isinstance(call.arguments, dict) else {}
        if self.external is not None and call.name not in TOOLS and self.external.handles(call.name):
            return await self.external.call(call)
        fn = getattr(self, f"_tool_{call.name}", None)
        if fn is None or call.name not in self.scopes.cfg.tools or not self.builtin:
            return await self._deny(call, args, f"the tool '{call.name}' is not available to agent "
                              f"{self.scopes.name}")
        try:
            return await fn(call, args)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a tool failure is reported to the model, not raised
            log.warning("tool %s failed: %s", call.name, exc)
            msg = f"the tool failed: {type(exc).__name__}: {exc}"
            await asyncio.to_thread(self.audit.add, self.scopes.name, call.name, args, "error", str(exc))
            return ToolResult(call, msg, "error")

    # -- outcomes --------------------------------------------------------------------

    async def _deny(self, call: ToolCall, args: dict, reason: str, decision: str = "denied") -> ToolResult:
        await asyncio.to_thread(self.audit.add, self.scopes.name, call.name, args, decision, reason)
        return ToolResult(call, f"REFUSED: {reason}. Do not retry; answer without it.", decision)

    async def _ok(self, call: ToolCall, args: dict, content: str, decision: str = "allowed",
                  item_ids: tuple[int, ...] = (), privacy: str = "public") -> ToolResult:
        await asyncio.to_thread(self.audit.add, self.scopes.name, call.name, args, decision, "",
                                len(content.encode("utf-8")))
        return ToolResult(call, content, decision, item_ids, privacy)

    async def _approved(self, action: str, summary: str, details: dict) -> bool:
        return await ask_approval(self.approver, ApprovalRequest(self.scopes.name, action, summary, details))

    # -- the tools -------------------------------------------------------------------

    async def _tool_search_memory(self, call: ToolCall, args: dict) -> ToolResult:
        ceiling = self.scopes.memory_ceiling(self.zone_ceiling)
        if ceiling is None or self.searcher is None:
            return await self._deny(call, args, f"agent {self.scopes.name} may not read memory")
        from deskmind.core.memory.search import SearchFilters, conversations_left_out

        allowed = [t for t in PRIVACY_LEVELS if privacy_rank(t) <= privacy_rank(ceiling)]
        limit = max(1, min(int(args.get("limit") or 5), 10))
        left_out = conversations_left_out(None, args.get("include_conversations") is True)
        res = await asyncio.to_thread(self.searcher.search, str(args.get("query", "")), limit,
                                      SearchFilters(privacy=allowed, exclude_kinds=left_out or None))
        lines = [f"[{i}] {h.title or h.source} ({h.source}): {h.text[:600]}"
                 for i, h in enumerate(res.hits, 1)]
        privacy = max([h.privacy for h in res.hits] or ["public"], key=privacy_rank)
        return await self._ok(call, args, "\n".join(lines) or "no results",
                              item_ids=tuple(h.chunk_id for h in res.hits), privacy=privacy)

    async def _tool_list_sources(self, call: ToolCall, args: dict) -> ToolResult:
        ceiling = self.scopes.memory_ceiling(self.zone_ceiling)
        if ceiling is None or self.store is None:
            return await self._deny(call, args, f"agent {self.scopes.name} may not read memory")
        limit = max(1, min(int(args.get("limit") or 20), 100))
        srcs = await asyncio.to_thread(self.store.list_sources)
        seen = [s for s in srcs if privacy_rank(s.privacy) <= privacy_rank(ceiling)][:limit]
        return await self._ok(call, args, "\n".join(f"- {s.title or s.uri} ({s.kind})" for s in seen)
                              or "memory is empty")

    async def _tool_read_file(self, call: ToolCall, args: dict) -> ToolResult:
        path = str(args.get("path", ""))
        if not self.scopes.may_read_path(path):
            return await self._deny(call, args, f"agent {self.scopes.name} may not read {path or 'that path'}")
        # A file's sensitivity is unknown: treat it as the default tag.
        if privacy_rank("private") > privacy_rank(self.zone_ceiling):
            return await self._deny(call, args, "file contents may not go to a model in this zone")
        p = Path(path).expanduser()
        data = await asyncio.to_thread(lambda: p.read_bytes()[:MAX_FILE_BYTES])
        return await self._ok(call, args, data.decode("utf-8", "replace"), privacy="private")

    async def _tool_write_file(self, call: ToolCall, args: dict) -> ToolResult:
        path, text = str(args.get("path", "")), str(args.get("text", ""))
        if not self.scopes.may_write_path(path):
            return await self._deny(call, args, f"agent {self.scopes.name} may not write to "
                                    f"{path or 'that path'} (it may write under: "
                                    f"{', '.join(self.scopes.cfg.write_paths) or 'nothing'})")
        data = text.encode("utf-8")
        if len(data) > MAX_FILE_BYTES:
            return await self._deny(call, args, f"the text is larger than {MAX_FILE_BYTES // 1024} KiB",
                                    "error")
        p = Path(path).expanduser()
        if not p.parent.is_dir():
            return await self._deny(call, args, f"the folder {p.parent} does not exist", "error")
        if not await self._approved("write", f"write {len(data)} bytes to {p}", {"path": str(p)}):
            return await self._deny(call, args, "the person did not approve writing this file", "refused")
        # A folder on the way may have become a symlink while the person was asked: resolve it
        # now, check what it resolves to, and write there (the name itself is replaced, not followed).
        real = Path(os.path.realpath(p.parent)) / p.name
        if not self.scopes.may_write_path(str(real)):
            return await self._deny(call, args, f"{p} now leads outside the folders agent "
                                    f"{self.scopes.name} may write to ({real})")
        await asyncio.to_thread(_write_atomically, real, data)
        return await self._ok(call, args, f"wrote {len(data)} bytes to {p}", decision="approved")

    async def _tool_save_note(self, call: ToolCall, args: dict) -> ToolResult:
        if not self.scopes.cfg.write_memory or self.remember is None:
            return await self._deny(call, args, f"agent {self.scopes.name} may not write to memory")
        title, text = str(args.get("title", "note"))[:200], str(args.get("text", ""))
        if not await self._approved("write", f"save a note '{title}' to memory", {"title": title}):
            return await self._deny(call, args, "the person did not approve saving this note", "refused")
        draft = SourceDraft(uri=f"deskmind://note/{uuid.uuid4()}", kind="note", title=title,
                            text=text, extractor="agent", chunks=[NewChunk(text)],
                            metadata={"agent": self.scopes.name})
        sid = await asyncio.to_thread(self.remember, draft)
        return await self._ok(call, args, f"saved as source {sid}", decision="approved")

    async def _tool_run_command(self, call: ToolCall, args: dict) -> ToolResult:
        command = str(args.get("command", ""))
        if not self.scopes.cfg.shell:
            return await self._deny(call, args, f"agent {self.scopes.name} may not run commands")
        if not await self._approved("shell", f"run: {command}", {"command": command}):
            return await self._deny(call, args, "the person did not approve running this command", "refused")
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            return await self._deny(call, args, f"unparsable command: {exc}", "error")
        proc = await asyncio.to_thread(self.run_process, argv)
        out = (proc.stdout or "")[-MAX_OUTPUT:] + (proc.stderr or "")[-MAX_OUTPUT // 4:]
        return await self._ok(call, args, f"exit {proc.returncode}\n{out}", decision="approved")


def _write_atomically(path: Path, data: bytes) -> None:
    # A new file renamed over the old one: a crash never leaves half a file, and a symlink at
    # the destination is replaced rather than followed out of the allowed folder.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _run_process(argv: list[str]) -> subprocess.CompletedProcess:
    # No shell: the approved words are exactly what runs (no expansion, no chaining).
    return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
