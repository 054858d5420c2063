"""``deskmind mcp --client NAME``: the stdio server, launched by the official MCP client."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from tests.core.gateway.conftest import grant
from tests.core.gateway.mcp_util import data, error_text


def _params(home: Path, name: str) -> StdioServerParameters:
    # DESKMIND_DB too: the client's server must open the memory this test's gateway holds.
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "DESKMIND_DB")}
    env["DESKMIND_HOME"] = str(home)
    return StdioServerParameters(command=sys.executable, args=["-m", "deskmind", "mcp", "--client", name],
                                 env=env)


def test_stdio_unknown_client_gets_nothing_until_granted(gateway, deskmind_home):
    async def call(name: str):
        async with Client(_params(deskmind_home, name), read_timeout_seconds=60) as c:
            tools = (await c.list_tools()).tools
            described.update({t.name: t.description for t in tools})
            names = [t.name for t in tools]
            listed = [r.uri for r in (await c.list_resources()).resources]
            return names, listed, await c.call_tool("search_memory", {"query": "tomatoes"})

    described: dict[str, str] = {}

    names, listed, refused = asyncio.run(call("claude-desktop"))
    assert "search_memory" in names and listed == []
    assert "deskmind clients grant claude-desktop" in error_text(refused)
    pending = gateway.clients.get("claude-desktop")
    assert pending is not None and pending.status == "pending" and not pending.granted
    assert pending.last_seen_at is None
    # Descriptions read as written, without the source's indentation.
    assert described["search_memory"].startswith("Hybrid (keyword + meaning) search")
    assert all("\n " not in d for d in described.values()), described

    grant(gateway, "claude-desktop", read="public")
    _, listed, ok = asyncio.run(call("claude-desktop"))
    assert listed == ["deskmind://note/garden"]  # its only public note
    gateway.clients.reload()
    assert gateway.clients.get("claude-desktop").last_seen_at is not None  # seen over stdio
    results = data(ok)["results"]
    assert results and {r["privacy"] for r in results} == {"public"}
    entries = gateway.audit.entries(client="claude-desktop")
    assert {e.surface for e in entries} == {"mcp-stdio"}
    assert [(e.action, e.decision) for e in reversed(entries)] == [
        ("connect", "denied"), ("list_tools", "denied"), ("list_recent", "denied"),
        ("search_memory", "denied"),
        ("connect", "allowed"), ("list_tools", "allowed"), ("list_recent", "allowed"),
        ("search_memory", "allowed")]
    listed_tools = [e for e in entries if e.action == "list_tools"]
    assert all(e.result_size == len(names) for e in listed_tools)
