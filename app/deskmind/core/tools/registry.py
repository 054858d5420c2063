"""Every configured MCP server's connection and tool list, for the agents and the settings.

One :class:`ToolServers` lives as long as the app (or one command); connections start on
first use and stop when idle or at :meth:`aclose`. A model sees a tool as ``server__tool``
(names in tool-calling APIs are limited to ``[A-Za-z0-9_-]{1,64}``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any, Callable

from deskmind.core.errors import UserInputError
from deskmind.core.tools.client import ServerConnection, ToolInfo, ToolServerError
from deskmind.core.tools.config import ServerSpec, ToolsConfig

log = logging.getLogger(__name__)


def model_name(server: str, tool: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", f"{server}__{tool}")
    return name[:64]


class ToolServers:
    def __init__(self, cfg: ToolsConfig, *, secrets: Any = None, log_dir: Path | None = None,
                 config_dir: Path | None = None, secrets_executor: Any = None) -> None:
        self.cfg = cfg
        self.config_dir = config_dir
        self.secrets = secrets
        self.secrets_executor = secrets_executor  # where tokens are read (None: the loop's pool)
        self.log_dir = log_dir
        self.conns: dict[str, ServerConnection] = {}
        self._tools: dict[str, list[ToolInfo]] = {}
        self._errors: dict[str, str] = {}

    def connection(self, server: str) -> ServerConnection:
        spec = self.cfg.servers.get(server)
        if spec is None:
            raise UserInputError(f"no tool server named '{server}'")
        conn = self.conns.get(server)
        if conn is None or conn.spec is not spec:
            conn = self.conns[server] = ServerConnection(spec, token=self._token(spec), log_dir=self.log_dir,
                                                         token_executor=self.secrets_executor)
        return conn

    def _token(self, spec: ServerSpec) -> Callable[[], str | None] | None:
        if self.secrets is None:
            return None
        return lambda: self.secrets.get(spec.secret_name)

    async def tools(self, server: str, *, refresh: bool = False) -> list[ToolInfo]:
        """The server's tools, classified (starts it if needed; the listing is kept)."""
        if refresh or server not in self._tools:
            self._tools[server] = await self.connection(server).list_tools()
            self._errors.pop(server, None)
        return self._tools[server]

    def last_error(self, server: str) -> str | None:
        return self._errors.get(server)

    async def granted(self, agent: str) -> tuple[dict[str, ToolInfo], dict[str, str]]:
        """The tools ``agent`` holds any grant on, by their model-facing names, and the servers
        that could not be used with why (they are left out; one bad server spoils none else)."""
        out: dict[str, ToolInfo] = {}
        failed: dict[str, str] = {}
        for server, per in self.cfg.grants.get(agent, {}).items():
            if server not in self.cfg.servers or not per:
                continue
            try:
                listed = await self.tools(server)
            except (ToolServerError, Exception) as exc:  # noqa: BLE001  one bad server spoils none else
                self._errors[server] = failed[server] = str(exc)
                log.warning("tool server %s unavailable: %s", server, exc)
                continue
            for t in listed:
                if self.cfg.grant_for(agent, server, t.name):
                    out[model_name(server, t.name)] = t
        return out, failed

    def remember_always(self, agent: str, server: str, tool: str) -> None:
        """The person chose "always for this agent": saved to tools.toml (blocking)."""
        from deskmind.core.tools.config import load_tools, save_tools

        self.cfg.set_grant(agent, server, tool, "always")
        if self.config_dir is not None:
            on_disk = load_tools(self.config_dir)
            if server in on_disk.servers:
                on_disk.set_grant(agent, server, tool, "always")
                save_tools(on_disk, self.config_dir)

    def find(self, name: str) -> ToolInfo | None:
        """A tool by its model-facing name among the listed ones (granted or not)."""
        for listed in self._tools.values():
            for t in listed:
                if model_name(t.server, t.name) == name:
                    return t
        return None

    async def aclose(self) -> None:
        conns, self.conns = list(self.conns.values()), {}
        await asyncio.gather(*(c.stop() for c in conns), return_exceptions=True)


def tool_servers_for(core: Any, *, secrets: Any = None, secrets_executor: Any = None) -> ToolServers:
    """The person's tool servers as configured now (blocking: reads tools.toml)."""
    from deskmind.core.tools.config import load_tools

    if secrets is None:
        from deskmind.core.secrets import SecretStore

        secrets = SecretStore()
    cfg_dir = core.paths.config_dir
    return ToolServers(load_tools(cfg_dir), secrets=secrets, log_dir=core.paths.log_dir,
                       config_dir=cfg_dir, secrets_executor=secrets_executor)
