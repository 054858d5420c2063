"""The gate in front of the MCP SDK's Streamable HTTP app: what reaches the SDK is a
well-formed JSON-RPC message, and sessions are bounded per client (:mod:`.sessions`).

The SDK itself refuses a malformed message, but with every validation error of every
JSON-RPC shape in one message of a few KB; here the first problem is named in one line.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, AsyncIterator

from mcp_types.jsonrpc import jsonrpc_message_adapter
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deskmind.core.gateway.bodies import replay
from deskmind.core.gateway.clients import ClientRegistry
from deskmind.core.gateway.http_guard import client_of
from deskmind.core.gateway.revocation import MAX_AGE
from deskmind.core.gateway.sessions import SESSION_HEADER, SessionKeeper, SessionTable

log = logging.getLogger(__name__)

INVALID_REQUEST = -32600
PARSE_ERROR = -32700


def envelope_problem(body: bytes) -> tuple[int, str] | None:
    """(JSON-RPC error code, short reason) when ``body`` is not one JSON-RPC 2.0 message."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return PARSE_ERROR, f"the body is not valid JSON: {str(exc)[:120]}"
    if not isinstance(data, dict):
        return INVALID_REQUEST, "the body must be one JSON-RPC message (a JSON object)"
    try:
        jsonrpc_message_adapter.validate_python(data, by_name=False)
    except ValidationError as exc:
        return INVALID_REQUEST, "not a JSON-RPC 2.0 message: " + _first_error(exc, data)
    return None


def _first_error(exc: ValidationError, data: dict[str, Any]) -> str:
    """The error a reader needs: the request's, or the notification's when it has no id."""
    shape = "JSONRPCRequest" if "id" in data else "JSONRPCNotification"
    errors = exc.errors()
    first = next((e for e in errors if e["loc"] and e["loc"][0] == shape), errors[0])
    where = ".".join(str(p) for p in first["loc"][1:]) or "message"
    return f"{where}: {first['msg']}"[:200]


async def jsonrpc_error(send: Send, status: int, code: int, message: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None,
                       "error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class McpGate:
    """ASGI middleware for the MCP app. The HTTP guard in front of it has already read the
    body whole (so reading it here costs no waiting) and named the client."""

    def __init__(self, app: ASGIApp, keeper: SessionKeeper | None = None, path: str = "/mcp") -> None:
        self.app = app
        self.keeper = keeper
        self.path = path

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Close idle and withdrawn sessions while the server runs."""
        if self.keeper is None:
            yield
            return
        async with self.keeper.running():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "POST":
            await self._post(scope, receive, send)
        else:
            await self._forward(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # the client went away
            parts.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(parts)
        problem = envelope_problem(body)
        if problem is not None:
            await jsonrpc_error(send, 400, *problem)
            return
        await self._forward(scope, replay(body, receive), send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.keeper is None:
            await self.app(scope, receive, send)
            return
        table = self.keeper.table
        client = client_of(scope)
        name = client.name if client is not None else ""
        sid = Headers(scope=scope).get(SESSION_HEADER)
        status: int | None = None
        too_many: list[str] = []

        async def watch(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
                opened = Headers(raw=msg.get("headers", [])).get(SESSION_HEADER)
                if sid is None and status < 400 and opened:
                    # Recorded before the answer goes out: the client may use it at once.
                    too_many.extend(table.add(opened, name))
            await send(msg)

        if sid is None:
            await self.app(scope, receive, watch)
            for old in too_many:  # the client's least recently used sessions, past its cap
                await self.keeper.close(old, f"client '{name}' opened more than "
                                             f"{table.per_client} sessions")
            return
        owner = table.owner(sid)
        if owner is not None and owner != name:
            # Another client's session: answered as if it did not exist, as the SDK does.
            await jsonrpc_error(send, 404, INVALID_REQUEST, "Session not found")
            return
        table.begin(sid)
        try:
            await self.app(scope, receive, watch)
        finally:
            table.end(sid)
            if scope.get("method") == "DELETE" or status == 404:
                table.forget(sid)


def session_gate(app: ASGIApp, clients: ClientRegistry, per_client: int,
                 idle_s: float) -> McpGate:
    """The gate for the gateway's MCP app, with sessions bounded per client and ended when
    the client's grant is withdrawn (re-read at most every ``MAX_AGE`` seconds)."""
    def still_granted(name: str) -> bool:
        c = clients.current(name, MAX_AGE)
        return c is not None and c.granted

    return McpGate(app, SessionKeeper(app, SessionTable(per_client, idle_s), still_granted))
