"""The gateway's composition: one object that owns clients, audit, the memory service and
the HTTP application, built from a :class:`~deskmind.core.app.Core`.

The tray app and ``deskmind serve`` both build a :class:`Gateway`; :class:`HttpServer` runs
its ASGI app with uvicorn on loopback, in the caller's event loop or on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any, AsyncIterator, Iterator

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from deskmind.core.config.sections import GatewayConfig
from deskmind.core.errors import UserInputError
from deskmind.core.gateway.audit import GatewayAudit
from deskmind.core.gateway.clients import ClientRegistry
from deskmind.core.gateway.http_guard import GuardConfig, HttpGuard, TokenBuckets
from deskmind.core.gateway.mcp_server import GatewayMCP
from deskmind.core.gateway.service import MemoryGateway

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class Gateway:
    """Everything the gateway surfaces share. Build once per process."""

    def __init__(self, core: Any, config: GatewayConfig | None = None, *,
                 chat: Any = None, ask: Any = None) -> None:
        self.core = core
        self.config = config or GatewayConfig.from_settings(core.settings)
        self.clients = ClientRegistry(core.store)
        self.audit = GatewayAudit(core.store)
        self.service = MemoryGateway(core, self.clients, self.audit)
        self.buckets = TokenBuckets()
        self.workers = anyio.CapacityLimiter(max(1, self.config.workers))
        self.chat = chat      # the OpenAI endpoint's backend (routing + runtimes)
        self.ask = ask        # async (caller, question, use_memory) -> dict
        self.runtimes: Any = None  # routing + runtime hub, when wired (integration.py)

    def warm_up(self) -> threading.Thread:
        """Load the embedder and the in-memory vector copy on a background thread, so a
        client's first search does not wait for them while the server already answers."""
        def load() -> None:
            try:
                self.core.active_embedder()
                self.core.store.warm_vectors()
            except Exception as exc:  # reported again, clearly, by the first search
                log.warning("could not load the search models ahead of time: %s", exc)

        t = threading.Thread(target=load, name="deskmind-gateway-warm-up", daemon=True)
        t.start()
        self._warming = t
        return t

    def settle(self, timeout: float = 120.0) -> None:
        """Wait for the warm-up before the process ends or the store closes. It runs native
        loaders (onnxruntime) that crash the interpreter if it finalises under them: a client
        that starts ``deskmind mcp`` and hangs up at once must not leave a segfault behind."""
        t = getattr(self, "_warming", None)
        if t is not None and t.is_alive():
            t.join(timeout)
            if t.is_alive():
                log.warning("the search models were still loading after %.0f s", timeout)

    def mcp(self, fixed_client: str | None = None) -> GatewayMCP:
        return GatewayMCP(self.service, fixed_client=fixed_client, ask=self.ask,
                          workers=self.workers, buckets=self.buckets)

    def http_app(self, *, mcp: bool = True, api: bool = True) -> Any:
        """The guarded ASGI app: ``/mcp`` (Streamable HTTP) and/or ``/v1`` (OpenAI API)."""
        from mcp.server.transport_security import TransportSecuritySettings

        routes: list[Any] = [Route("/health", _health, methods=["GET"])]
        mcp_server = None
        max_body = self.config.max_body_kb * 1024
        if api:
            from deskmind.core.gateway.openai_api import api_routes

            routes.append(Mount("/v1", routes=api_routes(self)))
        if mcp:
            mcp_server = self.mcp().server
            # The guard already checked Host and Origin; the SDK's own check would refuse
            # a remote peer's Host when the person enabled remote access.
            inner = mcp_server.streamable_http_app(
                streamable_http_path="/mcp", max_request_body_size=max_body,
                transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
            routes.append(Mount("/", app=inner))

        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            if mcp_server is not None:
                async with mcp_server.session_manager.run():
                    yield
            else:
                yield
            if self.runtimes is not None:
                await self.runtimes.aclose()
            self.audit.flush()

        app = Starlette(routes=routes, lifespan=lifespan)
        guard = GuardConfig(allow_remote=self.config.allow_remote,
                            allowed_origins=list(self.config.allowed_origins),
                            max_body_bytes=max_body)
        return HttpGuard(app, self.clients, guard, self.buckets,
                         on_refused=lambda who, path, why: self.audit.record(
                             who, "http", path, decision="denied", detail=why))


async def _health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon (or the tray app) owns signals and
    stops the server itself, so SIGTERM ends ``deskmind serve`` cleanly with status 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """uvicorn on the gateway's address. ``serve()`` in a loop, or ``start()`` on a thread."""

    def __init__(self, app: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False,
            # The peer address is the socket's: no proxy may claim another one.
            proxy_headers=False, server_header=False,
            # A ceiling on open connections so a flood cannot exhaust the process.
            limit_concurrency=256, timeout_keep_alive=5, lifespan="on",
        )
        self.server = _Uvicorn(self.config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", None) or []
        for s in servers:
            for sock in s.sockets:
                return sock.getsockname()[1]
        return self.config.port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    async def serve(self) -> None:
        try:
            await self.server.serve()
        except SystemExit:
            # uvicorn exits the process when it cannot bind; say what to do instead.
            raise UserInputError(
                f"the gateway could not listen on {self.config.host}:{self.config.port}: another "
                "program (or another Deskmind) is using it; choose a port with --port or "
                "[gateway] port in settings.toml") from None

    def start(self, timeout: float = 15.0) -> "HttpServer":
        """Run on a daemon thread with its own event loop; returns once it accepts."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve()),
                                        name="deskmind-gateway-http", daemon=True)
        self._thread.start()
        end = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise UserInputError(
                    f"the gateway could not listen on {self.config.host}:{self.config.port} "
                    "(is another Deskmind or program using that port? choose one with --port)")
            if time.monotonic() > end:
                raise TimeoutError("the gateway did not start in time")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
