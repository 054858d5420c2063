"""Talking to the gateway with the official MCP client."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


@contextlib.asynccontextmanager
async def http_client(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as hc:
        async with Client(streamable_http_client(url + "/mcp", http_client=hc)) as c:
            yield c


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text if result.content else result
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error, f"expected a refusal, got {result.structured_content}"
    return result.content[0].text
