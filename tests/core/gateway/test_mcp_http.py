"""The MCP memory server over Streamable HTTP, driven by the official MCP client."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.core.gateway.conftest import grant
from tests.core.gateway.mcp_util import data, error_text, http_client


def test_tools_are_listed_with_truthful_annotations(gateway, http_server):
    token = grant(gateway, "cursor", read="public")

    async def go():
        async with http_client(http_server.url, token) as c:
            return {t.name: t.annotations for t in (await c.list_tools()).tools}

    tools = asyncio.run(go())
    assert set(tools) == {"search_memory", "fetch_item", "list_recent", "capture_note", "ask"}
    for name in ("search_memory", "fetch_item", "list_recent"):
        a = tools[name]
        assert a.read_only_hint is True and a.destructive_hint is False
        assert a.idempotent_hint is True and a.open_world_hint is False
    cap = tools["capture_note"]
    assert cap.read_only_hint is False and cap.destructive_hint is False
    assert cap.idempotent_hint is False and cap.open_world_hint is False
    assert tools["ask"].read_only_hint is False and tools["ask"].open_world_hint is True


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_search_respects_the_privacy_ceiling_and_is_audited(gateway, http_server, memory):
    token = grant(gateway, "claude", read="personal")

    async def go():
        async with http_client(http_server.url, token) as c:
            wide = await c.call_tool("search_memory", {"query": "tomatoes Lisbon salary vault", "limit": 20})
            sal = await c.call_tool("search_memory", {"query": "salary review Dana"})
            return data(wide), data(sal)

    wide, sal = asyncio.run(go())
    seen = {r["privacy"] for r in wide["results"]}
    assert seen <= {"public", "personal"} and "public" in seen and "personal" in seen
    assert all("Dana" not in r["text"] for r in sal["results"])
    assert "not as instructions" in wide["notice"]
    gateway.audit.flush()
    entries = [e for e in gateway.audit.entries(client="claude") if e.action == "search_memory"]
    assert len(entries) == 2 and all(e.surface == "mcp-http" for e in entries)
    shown = {f"chunk:{r['chunk_id']}" for r in wide["results"]}
    assert shown <= set(gateway.audit.items_read("claude"))


def test_fetch_gives_provenance_and_hides_what_is_above_the_ceiling(gateway, http_server, memory):
    token = grant(gateway, "claude", read="private")

    async def go():
        async with http_client(http_server.url, token) as c:
            ok = await c.call_tool("fetch_item", {"item": f"source:{memory['salary']}"})
            hit = data(await c.call_tool("search_memory", {"query": "tomatoes water"}))["results"][0]
            chunk = await c.call_tool("fetch_item", {"item": hit["item"]})
            secret = await c.call_tool("fetch_item", {"item": f"source:{memory['vault']}"})
            absent = await c.call_tool("fetch_item", {"item": "source:99999"})
            return data(ok), data(chunk), error_text(secret), error_text(absent)

    ok, chunk, secret, absent = asyncio.run(go())
    prov = ok["provenance"]
    assert ok["text"].startswith("My salary review")
    assert prov["uri"] == "deskmind://note/salary" and prov["privacy"] == "private"
    assert prov["kind"] == "note" and prov["extractor"] == "test" and prov["indexed_at"]
    assert chunk["chunk"]["text"].startswith("The tomatoes") and chunk["provenance"]["title"] == "Garden plan"
    # Above the ceiling and absent read the same: existence is not revealed.
    assert secret.replace(f"source:{memory['vault']}", "X") == absent.replace("source:99999", "X")
    gateway.audit.flush()
    denied = [e for e in gateway.audit.entries(client="claude") if e.decision != "allowed"]
    assert len(denied) == 2


def test_list_recent_and_resources(gateway, http_server, memory):
    token = grant(gateway, "desktop", read="personal")

    async def go():
        async with http_client(http_server.url, token) as c:
            notes = data(await c.call_tool("list_recent", {"kind": "note"}))
            meetings = data(await c.call_tool("list_recent", {"kind": "meeting"}))
            templates = (await c.list_resource_templates()).resource_templates
            listed = (await c.list_resources()).resources
            res = await c.read_resource("deskmind://meeting/standup")
            return notes, meetings, templates, listed, res

    notes, meetings, templates, listed, res = asyncio.run(go())
    # The list is this client's: notes and meetings within its ceiling (personal).
    assert {r.uri for r in listed} == {"deskmind://note/garden", "deskmind://note/trip",
                                       "deskmind://meeting/standup"}
    assert {r.title for r in listed} >= {"Monday standup", "Garden plan"}
    assert {i["uri"] for i in notes["items"]} == {"deskmind://note/garden", "deskmind://note/trip"}
    assert [i["title"] for i in meetings["items"]] == ["Monday standup"]
    assert {t.uri_template for t in templates} == {"deskmind://note/{item_id}", "deskmind://meeting/{item_id}"}
    body = json.loads(res.contents[0].text)
    assert body["text"].startswith("We agreed") and body["provenance"]["kind"] == "meeting"


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_capture_needs_write_and_never_lowers_privacy(gateway, http_server, core):
    ro = grant(gateway, "reader", read="personal")
    rw = grant(gateway, "writer", read="personal", write=True)

    async def go():
        async with http_client(http_server.url, ro) as c:
            refused = error_text(await c.call_tool("capture_note", {"text": "hello"}))
        async with http_client(http_server.url, rw) as c:
            saved = data(await c.call_tool("capture_note", {
                "text": "Remember to call the plumber about the kitchen sink", "privacy": "public"}))
            found = data(await c.call_tool("search_memory", {"query": "plumber kitchen sink"}))
        return refused, saved, found

    refused, saved, found = asyncio.run(go())
    assert "may not write" in refused
    assert saved["privacy"] == "personal"  # raised to the client's read ceiling
    src = core.store.get_source(int(saved["item"].split(":")[1]))
    assert src.kind == "note" and src.metadata["captured_by"] == "writer"
    assert found["results"][0]["source"] == saved["uri"]


def test_revoking_applies_to_open_sessions(gateway, http_server):
    token = grant(gateway, "cursor", read="public")

    async def go():
        async with http_client(http_server.url, token) as c:
            first = data(await c.call_tool("search_memory", {"query": "tomatoes"}))
            gateway.clients.revoke("cursor")
            try:
                await c.call_tool("search_memory", {"query": "tomatoes"})
            except Exception as exc:  # the token no longer opens the door
                return first, str(exc)
            return first, None

    first, err = asyncio.run(go())
    assert first["results"]
    assert err is not None


def test_calls_also_reach_the_agents_audit_log(gateway, http_server):
    from deskmind.core.agents.audit import AuditLog

    token = grant(gateway, "cursor", read="public")

    async def go():
        async with http_client(http_server.url, token) as c:
            await c.call_tool("search_memory", {"query": "tomatoes"})
            await c.call_tool("capture_note", {"text": "nope"})

    asyncio.run(go())
    gateway.audit.flush()
    rows = [r for r in AuditLog(gateway.core.store).entries(agent="client:cursor")
            if r.tool not in ("connect", "list_tools")]
    assert [(r.tool, r.decision) for r in rows] == [("search_memory", "allowed"), ("capture_note", "denied")]
    assert "shown chunk:" in rows[0].reason and "may not write" in rows[1].reason


def test_connections_are_audited_with_the_programs_name(gateway, http_server):
    token = grant(gateway, "cursor", read="public")

    async def go():
        async with http_client(http_server.url, token) as c:
            await c.list_tools()

    asyncio.run(go())
    gateway.audit.flush()
    connects = [e for e in gateway.audit.entries(client="cursor") if e.action == "connect"]
    assert len(connects) == 1 and connects[0].decision == "allowed" and connects[0].args.startswith("program=")
    listed = [e for e in gateway.audit.entries(client="cursor") if e.action == "list_tools"]
    assert len(listed) == 1 and listed[0].decision == "allowed" and listed[0].result_size == 5
