"""Each runtime against a loopback server speaking its real protocol, including faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from deskmind.core.runtimes.anthropic import AnthropicRuntime
from deskmind.core.runtimes.base import (
    ChatRequest, FirstTokenTimeout, ModelNotFoundError, Message, MalformedStreamError, RateLimitedError,
    RuntimeConnectError, RuntimeHTTPError, StallTimeout, StreamTruncatedError, Timeouts, Tool,
)
from deskmind.core.runtimes.ollama import OllamaRuntime, num_ctx_for
from deskmind.core.runtimes.openai_compat import OpenAICompatRuntime
from tests.core.runtimes.conftest import transport
from tests.fakes.llm_server import Faults, FakeLLMServer, Reply

KINDS = {"ollama": OllamaRuntime, "openai": OpenAICompatRuntime, "anthropic": AnthropicRuntime}


def make(kind: str, url: str, **kw):
    headers = {"x-api-key": "k"} if kind == "anthropic" else {}
    return KINDS[kind]("fake", transport(url, headers=headers, **kw))


async def collect(rt, req):
    toks, calls, done = [], [], None
    async for ev in rt.chat(req):
        if ev.kind == "token":
            toks.append(ev.text)
        elif ev.kind == "tool_calls":
            calls.extend(ev.tool_calls)
        elif ev.kind == "done":
            done = ev
    return "".join(toks), calls, done


def req(model="fake-model:1b", **kw):
    return ChatRequest(model=model, messages=[Message("system", "be brief"), Message("user", "hi")], **kw)


@pytest.mark.parametrize("kind", list(KINDS))
def test_streams_text_and_tool_calls(kind, run):
    with FakeLLMServer(reply=Reply("one two three")) as srv:
        text, calls, done = run(collect(make(kind, srv.url), req()))
        assert text == "one two three"
        assert calls == [] and done is not None
        srv.reply = Reply("", tool_calls=[("search_memory", {"query": "tax 2024"})])
        tool = Tool("search_memory", "search", {"type": "object", "properties": {"query": {"type": "string"}}})
        text, calls, _ = run(collect(make(kind, srv.url), req(tools=[tool])))
        assert [(c.name, c.arguments) for c in calls] == [("search_memory", {"query": "tax 2024"})]
        body = srv.chat_requests()[-1].json()
        assert body["stream"] is True and body["tools"]


def test_ollama_sets_num_ctx_from_prompt_size(run):
    with FakeLLMServer(context_length=32768) as srv:
        async def both():
            rt = make("ollama", srv.url)
            long = ChatRequest(model="fake-model:1b", messages=[Message("user", "word " * 12000)])
            await collect(rt, long)
            sent = srv.chat_requests()[-1].json()["options"]["num_ctx"]
            assert sent >= 60000 // 3 and sent <= 32768 and sent % 2048 == 0
            await collect(rt, req())

        run(both())
        assert srv.chat_requests()[-1].json()["options"]["num_ctx"] == 4096
    # capped at the model's own window
    assert num_ctx_for([Message("user", "x" * 300000)], None, 8192) == 8192


def test_ollama_models_loaded_and_details(run):
    with FakeLLMServer(models=["a:1b", "b:7b"], context_length=131072) as srv:
        async def all_calls():
            rt = make("ollama", srv.url)
            models = await rt.list_models()
            assert [m.name for m in models] == ["a:1b", "b:7b"] and models[0].loaded
            assert (await rt.show("b:7b")).context_length == 131072
            assert [m.name for m in await rt.loaded_models()] == ["a:1b"]
            vecs = await rt.embed("a:1b", ["x", "y"])
            assert len(vecs) == 2 and len(vecs[0]) == 8

        run(all_calls())


@pytest.mark.parametrize("kind", list(KINDS))
def test_http_error_carries_server_message(kind, run):
    with FakeLLMServer(faults=Faults(status=500, message="CUDA out of memory")) as srv:
        with pytest.raises(RuntimeHTTPError, match="CUDA out of memory") as ei:
            run(collect(make(kind, srv.url), req()))
        assert ei.value.status == 500


@pytest.mark.parametrize("kind", list(KINDS))
def test_429_retries_once_after_the_servers_delay(kind, run):
    with FakeLLMServer(faults=Faults(status=429, retry_after=0.2, fail_times=1)) as srv:
        t = time.monotonic()
        text, _, _ = run(collect(make(kind, srv.url), req()))
        assert text and time.monotonic() - t >= 0.2
        assert len(srv.chat_requests()) == 2


def test_429_with_long_retry_after_is_a_specific_error(run):
    with FakeLLMServer(faults=Faults(status=429, retry_after=120)) as srv:
        with pytest.raises(RateLimitedError) as ei:
            run(collect(make("openai", srv.url), req()))
        assert ei.value.retry_after == 120 and len(srv.chat_requests()) == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_disconnect_mid_stream(kind, run):
    with FakeLLMServer(reply=Reply("a b c d e f"), faults=Faults(disconnect_after=2)) as srv:
        with pytest.raises(StreamTruncatedError):
            run(collect(make(kind, srv.url), req()))


@pytest.mark.parametrize("kind", list(KINDS))
def test_malformed_line(kind, run):
    with FakeLLMServer(reply=Reply("a b c"), faults=Faults(malformed_after=1)) as srv:
        with pytest.raises(MalformedStreamError):
            run(collect(make(kind, srv.url), req()))


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("after", [0, 2, 4])
def test_clean_end_without_the_end_marker_is_a_truncation(kind, after, run):
    # 4 is every token: the answer looks whole, but the server never said it was done.
    with FakeLLMServer(reply=Reply("a b c d"), faults=Faults(truncate_after=after)) as srv:
        with pytest.raises(StreamTruncatedError, match="without"):
            run(collect(make(kind, srv.url), req(num_ctx=4096)))
        assert len(srv.chat_requests()) == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_error_event_mid_stream_carries_the_servers_words(kind, run):
    with FakeLLMServer(reply=Reply("a b c d"), faults=Faults(error_after=2, message="GPU fell off the bus")) as srv:
        got: list[str] = []

        async def consume():
            async for ev in make(kind, srv.url).chat(req(num_ctx=4096)):
                if ev.kind == "token":
                    got.append(ev.text)

        with pytest.raises(RuntimeHTTPError, match="failed mid-answer: .*GPU fell off the bus"):
            run(consume())
        assert "".join(got) == "a b"


FAST_FAIL = Timeouts(connect=1, first_token=0.3, stall=0.3, request=2)


@pytest.mark.parametrize("kind", list(KINDS))
def test_first_token_timeout(kind, run):
    with FakeLLMServer(faults=Faults(slow_first_byte=3.0)) as srv:
        t = time.monotonic()
        with pytest.raises(FirstTokenTimeout):
            run(collect(make(kind, srv.url, timeouts=FAST_FAIL), req(num_ctx=4096)))
        # Given up long before the server would have answered, however loaded the machine.
        assert time.monotonic() - t < 2.5


@pytest.mark.parametrize("kind", list(KINDS))
def test_stall_timeout(kind, run):
    # Generous first-token room (a loaded machine is slow to start), a short stall limit.
    stall = Timeouts(connect=2, first_token=5, stall=1.0, request=5)
    with FakeLLMServer(reply=Reply("a b c d"), faults=Faults(stall_after=2, stall_seconds=6.0)) as srv:
        got: list[str] = []

        async def consume():
            async for ev in make(kind, srv.url, timeouts=stall).chat(req(num_ctx=4096)):
                if ev.kind == "token":
                    got.append(ev.text)

        t = time.monotonic()
        with pytest.raises(StallTimeout):
            run(consume())
        assert "".join(got) == "a b" and time.monotonic() - t < 5.0


@pytest.mark.parametrize("kind", list(KINDS))
def test_connect_refused_is_specific(kind, run):
    with FakeLLMServer() as srv:
        url = srv.url
    with pytest.raises(RuntimeConnectError, match="is it running"):
        run(collect(make(kind, url), req(num_ctx=4096)))
    if kind != "anthropic":  # its availability is having a key, not a probe
        assert run(make(kind, url).available()) is False


def test_cancel_closes_the_stream(run):
    with FakeLLMServer(reply=Reply("x " * 200), faults=Faults(token_delay=0.02)) as srv:
        rt = make("openai", srv.url)
        got = []

        async def consume():
            async for ev in rt.chat(req()):
                got.append(ev)

        async def main():
            task = asyncio.create_task(consume())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        t = time.monotonic()
        run(main())
        assert 0 < len(got) < 100 and time.monotonic() - t < 1.0


def test_model_not_found(run):
    with FakeLLMServer() as srv:
        with pytest.raises(ModelNotFoundError, match="ollama pull nope"):
            run(collect(make("ollama", srv.url), req(model="nope")))
        with pytest.raises(RuntimeHTTPError, match="'nope' not found") as ei:
            run(collect(make("openai", srv.url), req(model="nope")))
        assert ei.value.status == 404


@pytest.mark.parametrize("kind", list(KINDS))
def test_connect_timeout_is_specific(kind, run):
    import socket

    # A listener that never accepts, its backlog already full: further SYNs go unanswered.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        fast = Timeouts(connect=0.3, first_token=5, stall=5, request=5)
        t = time.monotonic()
        with pytest.raises(RuntimeConnectError, match="did not answer in time"):
            run(collect(make(kind, f"http://127.0.0.1:{port}", timeouts=fast), req(num_ctx=4096)))
        assert time.monotonic() - t < 2
    finally:
        for s in fillers:
            s.close()
        lsock.close()


SCHEMA = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_response_schema_is_sent_in_each_protocols_own_field(kind, run):
    """Ollama takes the schema as "format", OpenAI-compatible servers as a json_schema
    response_format; the Anthropic Messages API has no such field: the request goes without
    it and the runtime says it does not enforce schemas."""
    with FakeLLMServer(reply=Reply('{"answer": "yes"}')) as srv:
        rt = make(kind, srv.url)
        text, _, _ = run(collect(rt, req(response_schema=SCHEMA)))
        body = srv.chat_requests()[-1].json()
    assert text == '{"answer": "yes"}'
    if kind == "ollama":
        assert body["format"] == SCHEMA and rt.structured_output
    elif kind == "openai":
        assert body["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": SCHEMA, "strict": False}} and rt.structured_output
    else:
        assert "format" not in body and "response_format" not in body and not rt.structured_output
    assert make(kind, "http://127.0.0.1:9").request_body(req()).find(b"answer") == -1
