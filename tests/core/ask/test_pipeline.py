"""The pipeline's behaviour around faults: fallback chains, cancellation, streaming events."""

from __future__ import annotations

import asyncio
import time

import pytest

from deskmind.core.ask.pipeline import AskOptions
from deskmind.core.ask.session import ask_session
from deskmind.core.routing.config import parse_routing
from deskmind.core.routing.router import RoutingError
from deskmind.core.runtimes.base import RateLimitedError
from tests.core.ask.conftest import FAST, add_note
from tests.fakes.llm_server import FakeLLMServer, Faults, Reply


def two_local(a: str, b: str, extra: str = "") -> str:
    return f"""
[providers.a]
kind = "ollama"
url = "{a}"

[providers.b]
kind = "openai"
url = "{b}"

[classes]
general = ["a:fake-model:1b"]

[[rules]]
name = "with-fallback"
zones = ["machine"]
fallback = ["b:fake-model:1b"]
{extra}
"""


def session(core, cfg):
    return ask_session(core, cfg=cfg, targets=(), embedded=None, timeouts=FAST)


def test_fallback_chain_moves_on_when_the_first_runtime_fails(core):
    with FakeLLMServer(faults=Faults(status=500, message="model crashed")) as a, \
            FakeLLMServer(reply=Reply("from b")) as b:
        cfg = parse_routing(two_local(a.url, b.url))
        events = []

        async def main():
            async with session(core, cfg) as p:
                return await p.run("hi", AskOptions(use_memory=False, save=False), events.append)

        res = asyncio.run(main())
    assert res.answer == "from b" and res.route["provider"] == "b"
    assert "fell back to b:fake-model:1b" in res.route["reason"] and "model crashed" in res.route["reason"]
    kinds = [e.kind for e in events]
    assert kinds[:3] == ["retrieved", "route", "fallback"] and kinds[-1] == "done"
    assert "".join(e.text for e in events if e.kind == "token") == "from b"


def test_no_fallback_after_tokens_were_streamed(core):
    with FakeLLMServer(reply=Reply("a b c d"), faults=Faults(disconnect_after=2)) as a, FakeLLMServer() as b:
        cfg = parse_routing(two_local(a.url, b.url))

        async def main():
            async with session(core, cfg) as p:
                return await p.run("hi", AskOptions(use_memory=False, save=False))

        from deskmind.core.runtimes.base import StreamTruncatedError
        with pytest.raises(StreamTruncatedError):
            asyncio.run(main())
        assert b.chat_requests() == []  # a half answer is not silently replaced


def test_every_candidate_failing_names_each_failure(core):
    with FakeLLMServer(faults=Faults(status=429, retry_after=600)) as a, \
            FakeLLMServer(faults=Faults(status=500, message="model crashed")) as b:
        cfg = parse_routing(two_local(a.url, b.url))

        async def main():
            async with session(core, cfg) as p:
                return await p.run("hi", AskOptions(use_memory=False, save=False))

        with pytest.raises(RoutingError) as err:
            asyncio.run(main())
        assert len(a.chat_requests()) == 1 and len(b.chat_requests()) == 1  # both were tried
    msg = str(err.value)
    assert msg.startswith("no model could answer: ")
    first, second = msg.removeprefix("no model could answer: ").split(" | ")
    assert first.startswith("a:fake-model:1b: ") and "retry after 600 s" in first
    assert second.startswith("b:fake-model:1b: ") and "model crashed" in second


def test_the_only_candidate_failing_raises_its_own_fault(core):
    with FakeLLMServer(faults=Faults(status=429, retry_after=600)) as a, FakeLLMServer() as b:
        url_b = b.url
    with FakeLLMServer(faults=Faults(status=429, retry_after=600)) as a:
        cfg = parse_routing(two_local(a.url, url_b))

        async def main():
            async with session(core, cfg) as p:
                # inventory sees b down, so only a is tried
                return await p.run("hi", AskOptions(use_memory=False, save=False))

        with pytest.raises(RateLimitedError, match="retry after 600 s"):
            asyncio.run(main())
        assert len(a.chat_requests()) == 1


def test_cancelling_the_task_stops_streaming_and_saves_nothing(core):
    with FakeLLMServer(reply=Reply("x " * 300), faults=Faults(token_delay=0.02)) as a, FakeLLMServer() as b:
        cfg = parse_routing(two_local(a.url, b.url))
        got = []

        async def main():
            async with session(core, cfg) as p:
                async def consume():
                    async for ev in p.stream("hi", AskOptions(use_memory=False)):
                        got.append(ev)
                task = asyncio.create_task(consume())
                while not any(e.kind == "token" for e in got):
                    await asyncio.sleep(0.01)
                t = time.monotonic()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                return time.monotonic() - t

        took = asyncio.run(main())
    assert took < 0.5
    assert not any(e.kind == "done" for e in got)
    assert [s for s in core.store.list_sources() if s.kind == "conversation"] == []


def test_saved_conversation_is_as_private_as_its_strictest_input(core):
    add_note(core, "Garden plan: tomatoes by the south wall.", "public", "Garden")
    add_note(core, "Garden budget is 400 euros, from my private savings.", "private", "Budget")
    with FakeLLMServer(reply=Reply("Tomatoes [1].")) as a, FakeLLMServer() as b:
        cfg = parse_routing(two_local(a.url, b.url))

        async def main():
            async with session(core, cfg) as p:
                r1 = await p.run("garden tomatoes budget", AskOptions(prompt_privacy="public"))
                r2 = await p.run("what is 2+2", AskOptions(prompt_privacy="public", use_memory=False))
                again = await p.run("garden tomatoes budget", AskOptions(save=False))
                return r1, r2, again

        r1, r2, again = asyncio.run(main())
    # an earlier answer is never cited as a source for a later one
    assert again.citations and all(not c.source.startswith("deskmind://conversation/") for c in again.citations)
    src = {s.id: s for s in core.store.list_sources()}
    assert src[r1.saved_source_id].privacy == "private" and src[r1.saved_source_id].kind == "conversation"
    assert src[r2.saved_source_id].privacy == "public"
    assert "Q: garden tomatoes budget" in core.store.document_text(r1.saved_source_id)


def test_anthropic_cloud_provider_end_to_end(core):
    from deskmind.core.secrets import SecretStore

    with FakeLLMServer(models=["claude-fake"], require_key="sk-ant-test-1234567890",
                       reply=Reply("Hello from Claude.")) as srv:
        cfg = parse_routing(f"""
[defaults]
cloud = true
[providers.claude]
kind = "anthropic"
url = "{srv.url}"
zone = "cloud"
key = "claude"
[classes]
general = ["claude:claude-fake"]
[[rules]]
name = "cloud-public"
zones = ["cloud"]
[agents.quick-ask]
memory_ceiling = "public"
cloud = true
""")

        async def main():
            async with ask_session(core, cfg=cfg, approver=lambda r: True, targets=(), embedded=None,
                                   timeouts=FAST, secrets=SecretStore(environ={
                                       "DESKMIND_CLAUDE_API_KEY": "sk-ant-test-1234567890"})) as p:
                # No memory: with an empty one, no model would be asked at all.
                return await p.run("hi", AskOptions(prompt_privacy="public", save=False, use_memory=False))

        res = asyncio.run(main())
        body = srv.chat_requests()[0].json()
    assert res.answer == "Hello from Claude." and res.route["zone"] == "cloud"
    assert body["system"] and body["messages"][0]["role"] == "user" and body["max_tokens"] > 0
    from deskmind.core.routing.ledger import EgressLedger
    assert EgressLedger(core.store).count() == 1


def test_private_prompt_with_only_cloud_available_is_refused_not_leaked(core):
    with FakeLLMServer(models=["gpt"]) as srv:
        cfg = parse_routing(f"""
[defaults]
cloud = true
[providers.sky]
kind = "openai"
url = "{srv.url}"
zone = "cloud"
[classes]
general = ["sky:gpt"]
[[rules]]
name = "cloud"
zones = ["cloud"]
[agents.quick-ask]
cloud = true
""")

        async def main():
            async with ask_session(core, cfg=cfg, approver=lambda r: True, targets=(), embedded=None,
                                   timeouts=FAST) as p:
                return await p.run("my private question", AskOptions(save=False))

        with pytest.raises(RoutingError, match="above the cloud zone's ceiling"):
            asyncio.run(main())
        assert srv.received == []


def test_every_answer_has_a_token_cap_even_when_the_caller_sets_none(core):
    # Without a cap a small model kept generating for minutes on a simple question.
    with FakeLLMServer(reply=Reply("capped")) as a, FakeLLMServer(reply=Reply("capped")) as b:
        cfg = parse_routing(two_local(a.url, b.url))

        async def main(opts):
            async with session(core, cfg) as p:
                return await p.run("hi", opts)

        asyncio.run(main(AskOptions(use_memory=False, save=False)))
        asyncio.run(main(AskOptions(use_memory=False, save=False, max_tokens=40)))
        default, chosen = (r.json() for r in a.chat_requests())
    from deskmind.core.ask.pipeline import ANSWER_TOKENS
    assert default["options"]["num_predict"] == ANSWER_TOKENS
    assert chosen["options"]["num_predict"] == 40
