"""The gateway's HTTP server hosted inside another process (the tray app), started on demand.

Off by default: nothing of the gateway (uvicorn, the MCP SDK, a runtime hub) is imported until
the person switches it on, so the tray starts as fast and idles as small as without it. When
on, MCP and the OpenAI-compatible API are served on ``[gateway] host:port`` from a daemon
thread with its own event loop, exactly as ``deskmind serve`` serves them (same guard, same
grants, same audit). The switch itself is ``[gateway] tray_serves`` in settings.toml.

Every method here blocks (imports, SQLite, binding a port, joining a thread): call them from a
worker thread, never from a GUI thread.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)


class PortTaken(UserInputError):
    """The gateway's port is in use (often by ``deskmind serve``)."""


def tray_serves(settings: Any) -> bool:
    """Whether the person asked the tray app to serve the gateway (read without importing it)."""
    return settings.gateway.tray_serves is True


def served_address(settings: Any) -> str:
    """``host:port`` the gateway listens on, without importing the gateway."""
    host, port = settings.gateway.host, settings.gateway.port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GatewayHost:
    """One gateway HTTP server for this process, started and stopped on request."""

    def __init__(self, core: Any, *, config: Any = None, routing: Any = None,
                 hub_kw: dict[str, Any] | None = None) -> None:
        self.core = core
        self._config = config
        self.routing = routing
        self.hub_kw = hub_kw
        self.gateway: Any = None
        self.server: Any = None
        self._lock = threading.Lock()

    @property
    def config(self) -> Any:
        if self._config is None:
            from deskmind.core.gateway.stack import GatewayConfig

            self._config = GatewayConfig.from_settings(self.core.settings)
        return self._config

    @property
    def running(self) -> bool:
        return self.server is not None

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    def start(self) -> str:
        """Serve MCP and the API; returns the base URL. Raises :class:`PortTaken` when the port
        is in use, with what to do about it."""
        with self._lock:
            if self.server is not None:
                return self.server.url
            from deskmind.core.gateway.integration import build_gateway
            from deskmind.core.gateway.stack import HttpServer
            from deskmind.core.secrets import install_redaction

            cfg = self.config
            self._check_port(cfg.host, cfg.port)
            gw = build_gateway(self.core, cfg, routing=self.routing, hub_kw=self.hub_kw)
            server = HttpServer(gw.http_app(), host=cfg.host, port=cfg.port)
            install_redaction()  # uvicorn has just set up log handlers of its own
            try:
                server.start()
            except UserInputError as exc:  # lost a race for the port after the check
                raise PortTaken(str(exc)) from None
            self.gateway, self.server = gw, server
            log.info("the tray app serves the gateway at %s", server.url)
            return server.url

    def stop(self, wait: bool = True) -> None:
        """Stop serving (open streams end). ``wait=False`` only asks, for quitting."""
        with self._lock:
            server, gw = self.server, self.gateway
            self.server = self.gateway = None
        if server is None:
            return
        if wait:
            server.stop()
            gw.audit.flush()
        else:
            server.server.should_exit = True

    def clients_changed(self) -> None:
        """A grant or token changed elsewhere in this process: the server applies it now,
        not after its short cache expires."""
        gw = self.gateway
        if gw is not None:
            gw.clients.reload()

    def _check_port(self, host: str, port: int) -> None:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                s.bind((host, port))
                return
            except OSError:
                pass
        who = ("another Deskmind (probably 'deskmind serve', which serves the same MCP and API "
               "from the same memory: leave this off while it runs)"
               if _is_deskmind(host, port) else "another program")
        raise PortTaken(f"{host}:{port} is already in use by {who}; or set another port with "
                        "[gateway] port in settings.toml")


def _is_deskmind(host: str, port: int) -> bool:
    import httpx

    try:
        r = httpx.get(f"http://{host}:{port}/health", timeout=0.5, trust_env=False)
        return r.status_code == 200 and r.json() == {"status": "ok"}
    except (httpx.HTTPError, ValueError):
        return False
