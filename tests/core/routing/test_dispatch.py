"""One dispatcher for the quick-ask pipeline and the gateway's chat: the same fallback, the same
errors, the same second look at the inventory, driven through both callers against loopback
runtimes that speak the real Ollama and OpenAI protocols."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from deskmind.core.ask.pipeline import AskOptions
from deskmind.core.ask.session import ask_session
from deskmind.core.routing.config import parse_routing
from deskmind.core.routing.router import RoutingError
from tests.core.ask.conftest import FAST
from tests.core.gateway.conftest import grant
from tests.core.gateway.test_openai_api import client, serve
from tests.fakes.llm_server import FakeLLMServer, Faults, Reply


def two_providers(a: str, b: str, kind_a: str = "ollama", kind_b: str = "openai") -> str:
    return f"""
[providers.a]
kind = "{kind_a}"
url = "{a}"

[providers.b]
kind = "{kind_b}"
url = "{b}"

[classes]
general = ["a:fake-model:1b", "b:fake-model:1b"]

[[rules]]
name = "both"
zones = ["machine"]
"""


def one_provider(url: str) -> str:
    return f"""
[providers.a]
kind = "openai"
url = "{url}"

[classes]
general = ["a:fake-model:1b"]

[[rules]]
name = "only"
zones = ["machine"]
"""


def ask(core: Any, cfg: Any, prepare: Any = None, events: list | None = None) -> Any:
    async def main() -> Any:
        async with ask_session(core, cfg=cfg, targets=(), embedded=None, timeouts=FAST) as p:
            if prepare is not None:
                await prepare(p)
            return await p.run("hi", AskOptions(use_memory=False, save=False),
                               events.append if events is not None else None)
    return asyncio.run(main())


def chat(core: Any, routing_text: str, model: str = "general") -> Any:
    gw, srv = serve(core, routing_text)
    try:
        oa = client(srv, grant(gw, "aider", ask=True))
        return oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    finally:
        srv.stop()
        gw.audit.flush()


def test_a_server_that_fails_then_succeeds_is_fallen_back_from_by_both_callers(core):
    # Both providers are one server, which fails its first chat and answers the next.
    with FakeLLMServer(reply=Reply("second time lucky"),
                       faults=Faults(status=500, fail_times=1, message="warming up")) as srv:
        events: list = []
        res = ask(core, parse_routing(two_providers(srv.url, srv.url)), events=events)
        assert res.answer == "second time lucky" and res.route["provider"] == "b"
        assert "fell back to b:fake-model:1b after: a:fake-model:1b: " in res.route["reason"]
        assert [e.data["from"] for e in events if e.kind == "fallback"] == ["a:fake-model:1b"]
        assert [r.path for r in srv.chat_requests()] == ["/api/chat", "/v1/chat/completions"]

        srv.faults.fail_times = 2  # one more failure for the gateway's first candidate
        r = chat(core, two_providers(srv.url, srv.url))
        assert r.choices[0].message.content == "second time lucky"
        route = r.model_extra["deskmind"]["route"]
        assert route["provider"] == "b"
        assert len(route["fallbacks"]) == 1 and route["fallbacks"][0].startswith("a:fake-model:1b: ")
        assert "warming up" in route["fallbacks"][0]
        assert len(srv.chat_requests()) == 4


def test_every_candidate_failing_names_each_failure_through_both_callers(core):
    with FakeLLMServer(faults=Faults(status=500, message="out of memory")) as a, \
            FakeLLMServer(faults=Faults(status=503, message="loading the model")) as b:
        text = two_providers(a.url, b.url)
        with pytest.raises(RoutingError) as err:
            ask(core, parse_routing(text))
        assert len(a.chat_requests()) == 1 and len(b.chat_requests()) == 1
        with pytest.raises(openai.APIStatusError) as api_err:
            chat(core, text)
        assert len(a.chat_requests()) == 2 and len(b.chat_requests()) == 2
    for msg in (str(err.value), api_err.value.body["message"]):
        assert msg.startswith("no model could answer: ")
        first, second = msg.removeprefix("no model could answer: ").split(" | ")
        assert first.startswith("a:fake-model:1b: ") and "out of memory" in first
        assert second.startswith("b:fake-model:1b: ") and "loading the model" in second
    assert api_err.value.status_code == 503


def test_the_only_candidates_own_fault_reaches_both_callers(core):
    # One candidate tried: its specific fault (here a 429 with its advice) is the answer, for
    # the pipeline and for an OpenAI client alike (not a generic "no model could answer").
    from deskmind.core.runtimes.base import RateLimitedError

    with FakeLLMServer(faults=Faults(status=429, retry_after=600)) as a:
        with pytest.raises(RateLimitedError, match="retry after 600 s"):
            ask(core, parse_routing(one_provider(a.url)))
        with pytest.raises(openai.RateLimitError) as err:
            chat(core, one_provider(a.url))
    assert err.value.status_code == 429
    assert err.value.response.headers["retry-after"] == "600"


def test_a_runtime_started_after_the_inventory_was_taken_answers_the_ask(core):
    # The inventory is cached for a few seconds: a runtime that came up since it was taken is
    # probed once more before the request is refused.
    with FakeLLMServer() as probe:
        port = probe.port
    cfg = parse_routing(one_provider(f"http://127.0.0.1:{port}"))
    started: list[FakeLLMServer] = []

    async def start_after_inventory(p: Any) -> None:
        inv = await p.hub.inventory()
        assert not inv.providers["a"].available  # cached as down
        started.append(FakeLLMServer(reply=Reply("up now"), port=port).start())

    try:
        assert ask(core, cfg, prepare=start_after_inventory).answer == "up now"
    finally:
        for s in started:
            s.stop()
