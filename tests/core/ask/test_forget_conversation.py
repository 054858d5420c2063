"""A saved conversation is derived from the sources it cited: forgetting one of them forgets the
conversation too, and nothing of the source can be found through it afterwards."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from deskmind.cli.main import main
from deskmind.core.ask.pipeline import AskOptions
from deskmind.core.ask.session import ask_session
from deskmind.core.routing.config import parse_routing
from tests.core.ask.conftest import FAST
from tests.fakes.llm_server import FakeLLMServer, Reply

FACT = "The spare key to the boathouse hangs behind the barometer in the hallway."
ANSWER = "It hangs behind the barometer in the hallway, next to the boathouse key ring [1]."
QUESTION = "where is the spare key to the boathouse?"


def rules(url: str) -> str:
    return f"""
[providers.a]
kind = "ollama"
url = "{url}"

[classes]
general = ["a:fake-model:1b"]

[[rules]]
name = "local"
zones = ["machine"]
"""


def ask(core, url: str, question: str = QUESTION):
    async def run():
        async with ask_session(core, cfg=parse_routing(rules(url)), targets=(), embedded=None,
                               timeouts=FAST) as p:
            return await p.run(question, AskOptions())

    return asyncio.run(run())


def findable(core) -> list[tuple[str, str]]:
    """(kind, source) of every hit that still holds the fact or the answer, in every mode."""
    out = []
    for mode in ("fts", "vector", "hybrid"):
        for q in ("spare key boathouse barometer hallway", "where is the boathouse key"):
            for h in core.searcher().search(q, limit=20, mode=mode).hits:
                if "barometer" in h.text:
                    out.append((h.kind, h.source))
    return out


def _index(core, tmp_path: Path) -> Path:
    f = tmp_path / "house.md"
    f.write_text(f"# House notes\n\n{FACT}\n")
    (tmp_path / "garden.md").write_text("# Garden\n\nThe roses need pruning in March.\n")
    core.indexer().index([tmp_path])
    return f


def test_forgetting_a_cited_file_forgets_the_conversation(core, tmp_path: Path, capsys) -> None:
    f = _index(core, tmp_path)
    with FakeLLMServer(reply=Reply(ANSWER)) as srv:
        res = ask(core, srv.url)
    assert res.saved_source_id is not None
    (fid,) = core.store.resolve(str(f))
    assert fid in {c.source_id for c in res.citations}
    conv = core.store.get_source(res.saved_source_id)
    assert conv.kind == "conversation"
    # Before: the answer is findable through the conversation as well as through the file.
    assert {k for k, _ in findable(core)} == {"markdown", "conversation"}

    core.close()
    assert main(["forget", str(f), "--json"]) == 0
    receipt = json.loads(capsys.readouterr().out)
    by_kind = {s["kind"]: s for s in receipt["sources"]}
    assert by_kind["markdown"]["uri"] == str(f) and not by_kind["markdown"]["derived"]
    assert by_kind["conversation"]["id"] == res.saved_source_id and by_kind["conversation"]["derived"]
    assert by_kind["conversation"]["title"] == QUESTION
    assert receipt["derived_sources"] == 1
    assert (receipt["documents"], receipt["chunks"], receipt["fts_rows"], receipt["vectors"]) == (2, 2, 2, 2)
    # The conversation's records of what it was made from (each file it cited) went with it.
    assert receipt["links"] == len({c.source_id for c in res.citations})

    from deskmind.core.app import Core

    with Core() as again:
        again._embedders.update(core._embedders)
        assert findable(again) == []
        assert [s.kind for s in again.store.list_sources()] == ["markdown"]  # garden.md only
        assert again.store.sql.query_one("SELECT count(*) FROM source_derivations")[0] == 0


def test_the_human_receipt_names_the_conversation(core, tmp_path: Path, capsys) -> None:
    f = _index(core, tmp_path)
    with FakeLLMServer(reply=Reply(ANSWER)) as srv:
        res = ask(core, srv.url)
    core.close()
    assert main(["forget", str(f)]) == 0
    out = capsys.readouterr().out
    assert f"forgot source {res.saved_source_id} (conversation, derived): deskmind://conversation/" in out
    assert f'"{QUESTION}"' in out
    made_from = len({c.source_id for c in res.citations})
    assert "2 sources (1 derived)" in out and "2 full-text rows" in out and f"{made_from} links" in out


def test_a_source_forgotten_while_the_answer_streams_is_not_kept_by_the_conversation(
        core, tmp_path: Path) -> None:
    f = _index(core, tmp_path)

    def forget_then_answer(_body: dict) -> Reply:
        core.store.forget(str(f))  # the person forgets the file while the model is answering
        return Reply(ANSWER)

    with FakeLLMServer(script=forget_then_answer) as srv:
        res = ask(core, srv.url)
    assert res.answer == ANSWER and res.saved_source_id is None
    assert [s.kind for s in core.store.list_sources()] == ["markdown"]
    assert findable(core) == []


def test_an_answer_citing_two_files_goes_with_either(core, tmp_path: Path) -> None:
    _index(core, tmp_path)
    with FakeLLMServer(reply=Reply("Behind the barometer; prune roses in March [1][2].")) as srv:
        res = ask(core, srv.url, "spare key boathouse and roses pruning")
    cited = {c.source_id for c in res.citations}
    assert len(cited) == 2
    garden = core.store.resolve(str(tmp_path / "garden.md"))[0]
    r = core.store.forget(garden)
    assert res.saved_source_id in [s["id"] for s in r.sources]
    assert core.store.get_source(res.saved_source_id) is None


def test_a_file_shown_to_the_model_by_a_tool_counts_as_a_source_of_the_conversation(
        core, tmp_path: Path) -> None:
    f = _index(core, tmp_path)

    def searching_model(body: dict) -> Reply:
        if any(m.get("role") == "tool" for m in body["messages"]):
            return Reply(ANSWER)
        return Reply("", tool_calls=[("search_memory", {"query": "spare key boathouse"})])

    with FakeLLMServer(script=searching_model) as srv:
        cfg = parse_routing(rules(srv.url) + '\n[agents.quick-ask]\nmemory_ceiling = "private"\n'
                            'tools = ["search_memory"]\n')

        async def run():
            async with ask_session(core, cfg=cfg, targets=(), embedded=None, timeouts=FAST) as p:
                # No retrieval up front: only the tool shows the model the file.
                return await p.run(QUESTION, AskOptions(use_memory=False, tools=True))

        res = asyncio.run(run())
    assert res.citations == [] and res.tool_calls[0]["tool"] == "search_memory"
    assert res.saved_source_id is not None
    r = core.store.forget(str(f))
    assert res.saved_source_id in [s["id"] for s in r.sources]
    assert findable(core) == []
