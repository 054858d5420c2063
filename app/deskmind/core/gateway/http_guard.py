"""The door of the HTTP gateway: one ASGI middleware in front of MCP and the API.

In order, for every HTTP request: refuse peers that are not this machine (unless the person
enabled remote access), refuse Host headers that are not loopback names (DNS rebinding) and
Origins that are not allowed (a web page in a browser), require a granted client's bearer
token, rate-limit per client, cap the requests in flight (in all and per client), and read
the body whole (capped in size, time and JSON nesting,
see :mod:`.bodies`) before the endpoint sees it. Failures are short
JSON errors that say what to fix without revealing anything about tokens or clients.

A request whose token authenticates no one spends from its peer address's own small budget
for failures: a flood of bad, revoked or rotated-away tokens gets 429 and never touches the
budget of a client presenting a good one (the token lookup bounds its own cost).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from deskmind.core.gateway.bodies import (
    DEFAULT_BODY_SECONDS, DEFAULT_MAX_DEPTH, nesting_refusal, read_body, replay,
)
from deskmind.core.gateway.clients import Client, ClientRegistry, hash_token
from deskmind.core.gateway.limits import ConnectionLimits, InFlight

log = logging.getLogger(__name__)

SCOPE_KEY = "deskmind.client"
DEFAULT_MAX_BODY = 4 * 1024 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
CLOSE = (b"connection", b"close")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


class TokenBuckets:
    """Per-client token buckets: ``burst`` requests at once, then ``rate`` per second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 4096) -> None:
        self.clock = clock
        # name -> (tokens, last time), least recently used first; at most ``max_keys`` (peer
        # addresses are keys too, and a caller can change address at will).
        self._buckets: dict[str, tuple[float, float]] = {}
        self.max_keys = max_keys
        self._lock = threading.Lock()

    def take(self, name: str, rate: float, burst: int) -> float:
        """0.0 when the request may go ahead, else the seconds to wait before retrying."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(name, (float(burst), now))
            while len(self._buckets) >= self.max_keys:
                del self._buckets[next(iter(self._buckets))]
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / rate


@dataclass
class GuardConfig:
    allow_remote: bool = False
    # Extra allowed Origins (e.g. "http://localhost:3000" for a local web UI); loopback
    # origins are always allowed because only this machine can reach a loopback server.
    allowed_origins: list[str] = field(default_factory=list)
    max_body_bytes: int = DEFAULT_MAX_BODY
    body_seconds: float = DEFAULT_BODY_SECONDS   # for the whole body to arrive
    max_json_depth: int = DEFAULT_MAX_DEPTH
    # Requests being answered at once (sockets never count), in all and per client.
    max_in_flight: int = 192
    max_in_flight_per_client: int = 64
    public_paths: tuple[str, ...] = ("/health",)
    # Requests per peer address whose token is not already known (missing, wrong, revoked,
    # or new): enough for a client retrying a moment after its token was rotated.
    unauthenticated_rate: float = 5.0
    unauthenticated_burst: int = 30


class HttpGuard:
    def __init__(self, app: ASGIApp, clients: ClientRegistry, config: GuardConfig | None = None,
                 buckets: TokenBuckets | None = None,
                 on_refused: Callable[[str, str, str], None] | None = None,
                 connection_limits: ConnectionLimits | None = None) -> None:
        self.app = app
        # For the server that runs this app (its sockets are not the guard's business).
        self.connection_limits = connection_limits
        self.clients = clients
        self.config = config or GuardConfig()
        self.buckets = buckets or TokenBuckets()
        self.peer_buckets = TokenBuckets()  # keyed by peer address, before authentication
        self.in_flight = InFlight(self.config.max_in_flight, self.config.max_in_flight_per_client)
        # (client name or "?", path, reason) -> audit; unauthenticated refusals are not
        # audited per request (an attacker could fill the log), only logged at debug.
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        peer = (scope.get("client") or ("", 0))[0]
        if not self.config.allow_remote and not is_loopback(peer):
            log.info("refused a request from %s: remote access is off", peer)
            return await _error(send, 403, "forbidden",
                                "requests from other machines are refused: remote access is off")
        headers = Headers(scope=scope)
        if not self.config.allow_remote and not _host_ok(headers.get("host")):
            return await _error(send, 421, "misdirected_request",
                                "the Host header must name this machine (127.0.0.1 or localhost)")
        origin = headers.get("origin")
        if origin and not self._origin_ok(origin):
            return await _error(send, 403, "forbidden",
                                "this Origin may not use Deskmind: add it to the allowed "
                                "origins in the gateway settings if you trust it")
        path = scope.get("path", "")
        if path in self.config.public_paths:
            await self.app(scope, receive, send)
            return
        token = _bearer(headers.get("authorization"))
        # The lookup is bounded on its own (unknown tokens are remembered, forced re-reads of
        # the clients table are spaced out), so it comes first: a token made a moment ago by
        # another process is found even while a flood of bad ones has spent the budget below.
        client = self.clients.authenticate(token)
        if client is None:
            # Missing, malformed, unknown, revoked and rotated-away tokens spend from the
            # peer's own budget for failures, never from a client's.
            wait = self.peer_buckets.take(peer, self.config.unauthenticated_rate,
                                          self.config.unauthenticated_burst)
            if wait > 0:
                log.debug("too many unauthenticated requests from %s", peer)
                return await _error(send, 429, "rate_limit_exceeded",
                                    "too many requests without a valid token: retry later",
                                    extra_headers=[(b"retry-after",
                                                    str(max(1, math.ceil(wait))).encode()), CLOSE])
            # One answer for missing, malformed, unknown and revoked tokens. The connection
            # is not kept: idle connections kept alive are those of clients with a token
            # (the last ones closed to make room, see limits.py).
            return await _error(send, 401, "authentication_error",
                                "a valid bearer token is required",
                                extra_headers=[(b"www-authenticate", b'Bearer realm="deskmind"'),
                                               CLOSE])
        # Keyed by the credential as well as the client: for the moment a token rotated by
        # another process is still in this one's cache, a flood with it spends its own
        # budget, not the new token's.
        wait = self.buckets.take(credential_key(client.name, token), client.scopes.rate,
                                 client.scopes.burst)
        if wait > 0:
            if self.on_refused:
                self.on_refused(client.name, path, "rate limited")
            return await _error(send, 429, "rate_limit_exceeded",
                                f"too many requests from client '{client.name}': retry later",
                                extra_headers=[(b"retry-after", str(max(1, math.ceil(wait))).encode())])
        self.clients.touch(client.name)
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > self.config.max_body_bytes
            except ValueError:
                return await _error(send, 400, "invalid_request_error", "bad Content-Length header")
            if too_big:
                return await _error(send, 413, "request_too_large", self._too_big(),
                                    extra_headers=[CLOSE])
        full = self.in_flight.enter(client.name)
        if full == "client":
            return await _error(send, 429, "too_many_in_flight",
                                f"client '{client.name}' already has "
                                f"{self.config.max_in_flight_per_client} requests being answered: "
                                "wait for one to finish", extra_headers=[(b"retry-after", b"1")])
        if full is not None:
            return await _error(send, 503, "overloaded",
                                "the gateway is answering as many requests as it can: retry in a moment",
                                extra_headers=[(b"retry-after", b"1")])
        try:
            await self._answer(client, scope, receive, send)
        finally:
            self.in_flight.leave(client.name)

    async def _answer(self, client: Client, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive, self.config.max_body_bytes, self.config.body_seconds)
        if isinstance(body, bytes):
            refused = nesting_refusal(body, self.config.max_json_depth)
        else:
            refused = body
        if refused is not None:
            if refused.status is not None:  # else the client is gone: nobody to answer
                # The rest of a refused body is not read: the connection cannot be reused.
                await _error(send, refused.status, refused.code, refused.message,
                             extra_headers=[CLOSE] if refused.status != 400 else None)
            return
        scope = dict(scope)
        scope[SCOPE_KEY] = client
        await self.app(scope, replay(body, receive), send)

    def _too_big(self) -> str:
        return f"the request body is larger than {self.config.max_body_bytes // 1024} KiB"

    def _origin_ok(self, origin: str) -> bool:
        if origin in self.config.allowed_origins:
            return True
        if origin == "null":
            return False
        try:
            scheme, rest = origin.split("://", 1)
        except ValueError:
            return False
        host = rest.rsplit(":", 1)[0] if not rest.startswith("[") else rest.split("]")[0] + "]"
        return scheme in ("http", "https") and host.strip("[]") in ("127.0.0.1", "localhost", "::1")


def _host_ok(host: str | None) -> bool:
    if not host:
        return False
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in LOOPBACK_HOSTS or is_loopback(name.strip("[]"))


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _error(send: Send, status: int, code: str, message: str,
                 extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *(extra_headers or [])]})
    await send({"type": "http.response.body", "body": body})


def credential_key(name: str, token: str | None) -> str:
    """The rate budget's key: the client and (a short digest of) the token it presented."""
    return f"{name}/{hash_token(token or '')[:16]}"


def client_of(scope: Scope) -> Client | None:
    c = scope.get(SCOPE_KEY)
    return c if isinstance(c, Client) else None
