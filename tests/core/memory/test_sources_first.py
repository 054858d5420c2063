"""Search returns sources first: saved conversations (earlier answers, right or wrong) are left
out of `deskmind search`, MCP search_memory and ask retrieval unless asked for."""

from __future__ import annotations

import asyncio
import json

from deskmind.core.ask.pipeline import AskOptions, AskPipeline
from deskmind.core.gateway.stack import Gateway, GatewayConfig, HttpServer
from deskmind.core.routing.config import parse_routing
from tests.cli.conftest import run_deskmind
from tests.core.gateway.conftest import grant, remember_note
from tests.core.gateway.mcp_util import data, http_client

NOTE = "The Lisbon conference registration fee is 240 euros, due by the 3rd of March."
CHATS = [
    "Q: What is the Lisbon conference registration fee? A: The Lisbon conference registration "
    "fee is 420 euros [1].",
    "Q: When is the Lisbon conference fee due? A: The Lisbon conference registration fee is due "
    "by the 3rd of March [1].",
]
QUESTION = "Lisbon conference registration fee"


def remember_all(core) -> int:
    note = remember_note(core, "fee", "personal", "Conference fee", NOTE)
    for i, text in enumerate(CHATS):
        remember_note(core, f"chat-{i}", "personal", f"Earlier answer {i}", text, kind="conversation")
    return note


def test_the_cli_leaves_saved_conversations_out_unless_asked(core):
    note = remember_all(core)
    core.close()
    default = json.loads(run_deskmind("search", QUESTION, "--limit", "3", "--json").stdout)
    assert [h["source_id"] for h in default] == [note]
    both = json.loads(run_deskmind("search", QUESTION, "--limit", "3", "--json",
                                   "--include-conversations").stdout)
    assert {h["kind"] for h in both} == {"note", "conversation"} and len(both) == 3
    only = json.loads(run_deskmind("search", QUESTION, "--json", "--kind", "conversation").stdout)
    assert len(only) == 2 and {h["kind"] for h in only} == {"conversation"}


def test_mcp_search_memory_leaves_them_out_unless_the_tool_argument_asks(core):
    note = remember_all(core)
    gw = Gateway(core, GatewayConfig())
    srv = HttpServer(gw.http_app(), port=0).start()
    token = grant(gw, "claude", read="personal")

    async def go():
        async with http_client(srv.url, token) as c:
            plain = await c.call_tool("search_memory", {"query": QUESTION, "limit": 3})
            wide = await c.call_tool("search_memory", {"query": QUESTION, "limit": 3,
                                                       "include_conversations": True})
            return data(plain), data(wide)

    try:
        plain, wide = asyncio.run(go())
    finally:
        srv.stop()
        gw.audit.flush()
    assert [r["source_id"] for r in plain["results"]] == [note]
    assert {r["kind"] for r in wide["results"]} == {"note", "conversation"}


def test_ask_retrieval_cites_the_note_not_earlier_answers(core):
    note = remember_all(core)
    cfg = parse_routing('[[rules]]\nname = "any"\nzones = ["machine"]\n\n'
                        '[agents.quick-ask]\nmemory_ceiling = "personal"\n')
    pipeline = AskPipeline(cfg=cfg, hub=None, searcher=core.searcher(), store=core.store)
    hits = pipeline.retrieve(QUESTION, AskOptions(limit=3))
    assert [h.source_id for h in hits] == [note]
