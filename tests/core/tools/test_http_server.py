"""A Streamable HTTP MCP server with a bearer token: Deskmind's own memory gateway (a real
server speaking the protocol over loopback), used as an outside tool server; the token comes
from the secret store, never from tools.toml."""

from __future__ import annotations

import asyncio

import pytest

from deskmind.core.secrets import SecretStore
from deskmind.core.tools.client import ToolServerError
from deskmind.core.tools.config import ServerSpec, ToolsConfig
from deskmind.core.tools.registry import ToolServers
from tests.core.gateway.conftest import grant, gateway, http_server, memory  # noqa: F401


def test_http_server_with_bearer_token(gateway, http_server, tmp_path):  # noqa: F811
    token = grant(gateway, "deskmind-self", read="public")
    spec = ServerSpec("memory", transport="http", url=http_server.url + "/mcp", call_timeout=10)
    cfg = ToolsConfig(servers={"memory": spec})

    async def main(secrets):
        servers = ToolServers(cfg, secrets=secrets, log_dir=tmp_path)
        try:
            tools = {t.name: t for t in await servers.tools("memory")}
            out = await servers.connection("memory").call("search_memory", {"query": "tomatoes"})
            return tools, out
        finally:
            await servers.aclose()

    tools, out = asyncio.run(main(SecretStore(environ={"DESKMIND_MCP_MEMORY_API_KEY": token})))
    assert tools["search_memory"].kind == "read-only" and tools["ask"].kind == "open-world"
    assert tools["capture_note"].kind == "write"
    assert "Tuesday and Friday" in out.text and not out.is_error
    with pytest.raises(ToolServerError, match="could not be started"):
        asyncio.run(main(SecretStore(environ={"DESKMIND_MCP_MEMORY_API_KEY": "dmk_wrongwrongwrongwrongwrong"})))
