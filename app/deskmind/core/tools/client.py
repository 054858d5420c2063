"""One connection to one MCP server, on the official MCP SDK: started on first use, stopped
when idle, every wait bounded.

The SDK's client is an async context manager whose task groups must be entered and left by
one task, so each connection has an *owner* task that enters it, reports ready and waits to be
told to stop. Calls are sent from whichever task asks and raced against the owner ending (the
server crashed), the server sending something that is not JSON-RPC, and the call's timeout; a
server that hangs is stopped and starts again on the next use. Nothing here waits without a
limit, so a broken server costs the agent one clear error, never a hung palette.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from deskmind.core.errors import DeskmindError
from deskmind.core.tools.config import ServerSpec

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 64 * 1024
STDERR_TAIL = 400


class ToolServerError(DeskmindError):
    """A tool server could not be started, stopped answering, crashed or spoke badly."""

    exit_code = 7


@dataclass
class ToolInfo:
    server: str
    name: str
    description: str
    input_schema: dict[str, Any]
    # MCP's hints as the server declared them (None: not declared).
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None
    kind: str = "write"            # the effective classification (see classify)
    overridden: bool = False       # the person set kind

    def to_dict(self) -> dict[str, Any]:
        return {"server": self.server, "name": self.name, "description": self.description,
                "annotations": {"read_only": self.read_only, "destructive": self.destructive,
                                "idempotent": self.idempotent, "open_world": self.open_world},
                "kind": self.kind, "overridden": self.overridden}


def classify(t: ToolInfo, override: str | None) -> ToolInfo:
    """MCP's defaults when a hint is absent: not read-only, destructive, open-world; so an
    unannotated tool asks each time. The person's override wins."""
    if override:
        t.kind, t.overridden = override, True
    elif t.read_only is True and t.open_world is not True:
        t.kind = "read-only"
    elif t.open_world is True:
        t.kind = "open-world"
    elif t.destructive is False:
        t.kind = "write"
    else:
        t.kind = "destructive"
    return t


@dataclass
class CallOutcome:
    text: str
    is_error: bool
    size: int  # bytes of text before any cut
    structured: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class ServerConnection:
    """Safe to use from one event loop; calls may overlap (MCP multiplexes requests)."""

    def __init__(self, spec: ServerSpec, *, token: Callable[[], str | None] | None = None,
                 log_dir: Path | None = None, clock: Callable[[], float] = time.monotonic,
                 token_executor: Executor | None = None) -> None:
        """``token()`` reads the server's token (blocking: the keyring) on ``token_executor``
        (the desktop app's keyring thread), by default the loop's pool."""
        self.spec = spec
        self.token = token
        self.token_executor = token_executor
        self.log_dir = log_dir
        self.clock = clock
        self.client: Any = None
        self.last_used = 0.0
        self.starts = 0
        self._owner: asyncio.Task | None = None
        self._stop: asyncio.Event | None = None
        self._bad: asyncio.Event | None = None
        self._bad_what = ""
        self._start_lock: asyncio.Lock | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._busy = 0
        self._errlog: Any = None
        self._errlog_from = 0

    @property
    def running(self) -> bool:
        return self.client is not None and self._owner is not None and not self._owner.done()

    # -- lifecycle --------------------------------------------------------------------------

    async def ensure(self) -> Any:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self.running:
                return self.client
            await self._shutdown()
            return await self._start()

    async def _start(self) -> Any:
        self.starts += 1
        self._stop, self._bad, self._bad_what = asyncio.Event(), asyncio.Event(), ""
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        token = None
        if self.token and self.spec.transport == "http":
            token = await asyncio.get_running_loop().run_in_executor(self.token_executor, self.token)
        self._owner = asyncio.ensure_future(self._own(ready, token))
        bad = asyncio.ensure_future(self._bad.wait())
        try:
            done, _ = await asyncio.wait({ready, bad}, timeout=self.spec.start_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            bad.cancel()
        if ready in done and not ready.exception():
            self.client = ready.result()
            log.info("tool server %s started (%s)", self.spec.name, self.client.protocol_version)
            self._touch()
            return self.client
        if ready in done:
            why = _describe(ready.exception())
        elif self._bad.is_set():
            why = f"it sent something that is not MCP's JSON-RPC ({self._bad_what})"
        else:
            why = f"it did not complete the MCP handshake within {self.spec.start_timeout:g} s"
        ready.cancel()
        # The owner is still inside the handshake, not waiting to be told to stop: cancel it.
        owner, self._owner = self._owner, None
        if owner is not None and not owner.done():
            owner.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(owner, 8.0)
        await self._shutdown()
        raise ToolServerError(f"the tool server '{self.spec.name}' could not be started: {why}"
                              f"{self._stderr_tail()}")

    async def _own(self, ready: asyncio.Future, token: str | None) -> None:
        from mcp import Client

        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = await self._transport(stack, token)
                client = await stack.enter_async_context(
                    Client(transport, message_handler=self._on_message))
                if not ready.done():
                    ready.set_result(client)
                assert self._stop is not None
                await self._stop.wait()
        except BaseException as exc:  # noqa: BLE001  every way of ending is reported to the waiter
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else ToolServerError(str(exc) or type(exc).__name__))
            if isinstance(exc, Exception):
                log.info("tool server %s ended: %s", self.spec.name, _describe(exc))
        finally:
            self.client = None

    async def _transport(self, stack: contextlib.AsyncExitStack, token: str | None) -> Any:
        if self.spec.transport == "http":
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            headers = {"Authorization": f"Bearer {token}"} if token else {}
            hc = await stack.enter_async_context(httpx2.AsyncClient(
                headers=headers, timeout=self.spec.call_timeout))
            return streamable_http_client(self.spec.url, http_client=hc)
        from mcp.client.stdio import StdioServerParameters, stdio_client

        self._errlog = self._open_errlog()
        stack.callback(self._errlog.close)
        params = StdioServerParameters(command=self.spec.command, args=list(self.spec.args),
                                       env=dict(self.spec.env) or None, encoding_error_handler="replace")
        return stdio_client(params, errlog=self._errlog)

    def _open_errlog(self) -> Any:
        if self.log_dir is None:
            return open(os.devnull, "w", encoding="utf-8")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        f = open(self.log_dir / f"mcp-{self.spec.name}.log", "a", encoding="utf-8")
        self._errlog_from = f.tell()  # what this run of the server says starts here
        return f

    def _stderr_tail(self) -> str:
        if self.log_dir is None:
            return ""
        try:
            with open(self.log_dir / f"mcp-{self.spec.name}.log", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(self._errlog_from, f.tell() - STDERR_TAIL))
                tail = f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f". Its last words: {tail.splitlines()[-1][:200]}" if tail else ""

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception) and self._bad is not None:
            self._bad_what = str(message)[:160]
            log.warning("tool server %s sent an unreadable message: %s", self.spec.name, self._bad_what)
            self._bad.set()

    async def stop(self) -> None:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            await self._shutdown()

    async def _shutdown(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        owner, self._owner = self._owner, None
        self.client = None
        if owner is None or owner.done():
            return
        assert self._stop is not None
        self._stop.set()
        try:
            # The SDK ends a stdio server politely, then terminates and kills it (about 2 s at most).
            await asyncio.wait_for(asyncio.shield(owner), 8.0)
        except (asyncio.TimeoutError, Exception):
            owner.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(owner, 4.0)
        log.info("tool server %s stopped", self.spec.name)

    def _touch(self) -> None:
        self.last_used = self.clock()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self._idle_handle = asyncio.get_running_loop().call_later(self.spec.idle_stop, self._idle)

    def _idle(self) -> None:
        self._idle_handle = None
        if self._busy:
            self._touch()
            return
        log.info("tool server %s idle for %g s: stopping it", self.spec.name, self.spec.idle_stop)
        asyncio.ensure_future(self.stop())

    # -- use --------------------------------------------------------------------------------

    async def list_tools(self) -> list[ToolInfo]:
        client = await self.ensure()
        res = await self._bounded(client.list_tools(), "listing its tools")
        out = []
        for t in res.tools:
            a = t.annotations
            info = ToolInfo(self.spec.name, t.name, (t.description or "").strip(),
                            dict(t.input_schema or {"type": "object", "properties": {}}),
                            a.read_only_hint if a else None, a.destructive_hint if a else None,
                            a.idempotent_hint if a else None, a.open_world_hint if a else None)
            out.append(classify(info, self.spec.classify.get(t.name)))
        return out

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallOutcome:
        client = await self.ensure()
        res = await self._bounded(client.call_tool(tool, arguments), f"calling {tool}")
        parts = []
        for c in res.content or []:
            text = getattr(c, "text", None)
            parts.append(text if isinstance(text, str) else f"[{getattr(c, 'type', 'content')} not shown]")
        text = "\n".join(parts)
        if not text and res.structured_content is not None:
            import json

            text = json.dumps(res.structured_content, ensure_ascii=False, default=str)
        size = len(text.encode("utf-8"))
        if len(text) > MAX_RESULT_CHARS:
            text = text[:MAX_RESULT_CHARS] + f"\n[cut: the result was {size} bytes]"
        return CallOutcome(text, bool(res.is_error), size, res.structured_content)

    async def _bounded(self, coro: Any, what: str) -> Any:
        self._busy += 1
        job = asyncio.ensure_future(coro)
        owner = self._owner
        assert owner is not None and self._bad is not None
        bad = asyncio.ensure_future(self._bad.wait())
        try:
            done, _ = await asyncio.wait({job, owner, bad}, timeout=self.spec.call_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            closed = False
            if job in done:
                exc = job.exception()
                if exc is None:
                    return job.result()
                from mcp.shared.exceptions import MCPError
                from mcp_types import CONNECTION_CLOSED

                if not (isinstance(exc, MCPError) and exc.error.code == CONNECTION_CLOSED):
                    raise ToolServerError(f"the tool server '{self.spec.name}' answered with an "
                                          f"error while {what}: {_describe(exc)}") from None
                closed = True
            job.cancel()
            if owner in done or closed:
                why = f"it stopped while {what}{self._stderr_tail()}"
            elif bad in done:
                why = f"it sent something that is not MCP's JSON-RPC while {what} ({self._bad_what})"
            else:
                why = f"it did not answer within {self.spec.call_timeout:g} s while {what}"
            await self.stop()
            raise ToolServerError(f"the tool server '{self.spec.name}' failed: {why}; it was "
                                  "stopped and starts again on the next use")
        except asyncio.CancelledError:
            job.cancel()
            raise
        finally:
            bad.cancel()
            self._busy -= 1
            if self.running:
                self._touch()


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions[:3])
    if isinstance(exc, FileNotFoundError):
        return f"the command was not found ({exc.filename or exc})"
    if "Connection closed" in str(exc):
        return "it closed the connection (its process ended)"
    if isinstance(exc, PermissionError):
        return f"the command may not be run ({exc.filename or exc})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
