"""The [gateway] settings and the stdio rate limit."""

from __future__ import annotations

import asyncio

import pytest
from mcp import Client

from deskmind.core.config.settings import Settings
from deskmind.core.errors import UserInputError
from deskmind.core.gateway.stack import GatewayConfig
from tests.core.gateway.conftest import grant
from tests.core.gateway.mcp_util import data, error_text


def test_listening_beyond_loopback_needs_allow_remote():
    s = Settings(gateway=GatewayConfig(host="0.0.0.0", port=9000))
    with pytest.raises(UserInputError, match="allow_remote"):
        GatewayConfig.from_settings(s)
    s.gateway.allow_remote = True
    cfg = GatewayConfig.from_settings(s)
    assert (cfg.host, cfg.port, cfg.allow_remote) == ("0.0.0.0", 9000, True)
    assert GatewayConfig.from_settings(Settings()).host == "127.0.0.1"


def test_a_stdio_client_is_rate_limited_too(gateway):
    grant(gateway, "script", read="public", rate=1, burst=3)
    server = gateway.mcp(fixed_client="script").server

    async def go():
        async with Client(server) as c:  # the SDK's in-process transport: same server object
            return [await c.call_tool("list_recent", {}) for _ in range(6)]

    results = asyncio.run(go())
    assert [r.is_error for r in results[:3]] == [False] * 3
    assert "too many requests" in error_text(results[-1])
    assert data(results[0])["items"] is not None
