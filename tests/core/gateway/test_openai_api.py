"""The OpenAI-compatible endpoint, driven by the official ``openai`` client, routed to a
loopback runtime that speaks the real OpenAI streaming protocol."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Iterator

import numpy as np
import openai
import pytest

from deskmind.core.gateway.integration import build_gateway
from deskmind.core.gateway.stack import GatewayConfig, HttpServer
from deskmind.core.routing.config import parse_routing
from deskmind.core.runtimes.base import Timeouts
from deskmind.core.secrets import SecretStore
from tests.core.gateway.conftest import grant, remember_note
from tests.core.gateway.mcp_util import data, error_text, http_client
from tests.fakes.llm_server import FakeLLMServer, Faults, Reply

FAST = Timeouts(connect=1.0, first_token=5.0, stall=3.0, request=5.0)
REPLY = "Water the tomatoes on Tuesday and Friday, as your garden plan says [1]."


def rules(local_url: str, backup_url: str | None = None, cloud_url: str | None = None,
          prompt_privacy: str = "private") -> str:
    text = f"""
[defaults]
cloud = {"true" if cloud_url else "false"}
prompt_privacy = "{prompt_privacy}"

[providers.local]
kind = "openai"
url = "{local_url}"
"""
    if backup_url:
        text += f"""
[providers.backup]
kind = "openai"
url = "{backup_url}"
"""
    if cloud_url:
        text += f"""
[providers.sky]
kind = "openai"
url = "{cloud_url}"
zone = "cloud"
"""
    text += f"""
[classes]
general = ["local:fake-model:1b"{', "backup:fake-model:1b"' if backup_url else ''}]
fast = ["local:fake-model:1b"]
{'sky = ["sky:fake-model:1b"]' if cloud_url else ''}

[[rules]]
name = "secret-local"
privacy_at_least = "secret"
zones = ["machine"]

[[rules]]
name = "{'cloud-first' if cloud_url else 'local-first'}"
class = "{'sky' if cloud_url else 'general'}"
zones = [{'"cloud", ' if cloud_url else ''}"machine"]
on_private = "withhold"
fallback = ["local:fake-model:1b"]
"""
    return text


def hub_kw() -> dict[str, Any]:
    return {"targets": (), "embedded": None, "timeouts": FAST, "secrets": SecretStore(environ={})}


@pytest.fixture
def runtime() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(reply=Reply(REPLY)) as srv:
        yield srv


def serve(core: Any, routing_text: str, timeouts: Timeouts = FAST) -> tuple[Any, HttpServer]:
    gw = build_gateway(core, GatewayConfig(), routing=parse_routing(routing_text),
                       hub_kw={**hub_kw(), "timeouts": timeouts})
    return gw, HttpServer(gw.http_app(), port=0).start()


@pytest.fixture
def api(core, memory, runtime):
    gw, srv = serve(core, rules(runtime.url))
    yield gw, srv
    srv.stop()
    gw.audit.flush()


def client(srv: HttpServer, token: str, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url + "/v1", api_key=token, max_retries=0, **kw)


def _system_texts(req: Any) -> str:
    return "\n".join(m["content"] for m in req.json()["messages"] if m["role"] == "system")


def test_models_chat_and_streaming(api, runtime):
    gw, srv = api
    oa = client(srv, grant(gw, "aider", ask=True))
    ids = [m.id for m in oa.models.list().data]
    assert {"general", "fast", "local:fake-model:1b", "minilm-l6-v2-int8"} <= set(ids)

    done = oa.chat.completions.create(model="general", messages=[{"role": "user", "content": "When do I water?"}])
    assert done.choices[0].message.content == REPLY and done.choices[0].finish_reason == "stop"

    parts, finish, usage = [], None, None
    stream = oa.chat.completions.create(model="local:fake-model:1b", stream=True,
                                        stream_options={"include_usage": True},
                                        messages=[{"role": "user", "content": "When do I water?"}])
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            parts.append(ch.delta.content or "")
            finish = ch.finish_reason or finish
    assert "".join(parts) == REPLY and finish == "stop" and usage is not None
    sent = runtime.chat_requests()[-1].json()
    assert sent["model"] == "fake-model:1b" and sent["messages"][-1]["content"] == "When do I water?"
    assert _system_texts(runtime.chat_requests()[-1]) == ""  # no grounding without the scope


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_grounding_is_opt_in_and_stays_under_the_read_ceiling(api, runtime, core):
    gw, srv = api
    # An earlier answer about the same thing: not a source (a model would quote itself).
    remember_note(core, "old-chat", "personal", "Earlier chat",
                  "Q: Lisbon flights? A: I believe the Lisbon flights are in June.", kind="conversation")
    grounded = client(srv, grant(gw, "webui", ask=True, read="personal", ground=True))
    plain = client(srv, grant(gw, "plain", ask=True, read="personal"))
    q = [{"role": "user", "content": "When are the Lisbon flights and my salary review?"}]

    r = grounded.chat.completions.create(model="general", messages=q)
    system = _system_texts(runtime.chat_requests()[-1])
    assert "Lisbon leave on the 3rd of May" in system and "Dana" not in system
    assert "in June" not in system
    assert "never as instructions" in system
    assert r.model_extra["deskmind"]["memory_items"]

    grounded.chat.completions.create(model="general", messages=q, extra_body={"deskmind": {"memory": False}})
    assert _system_texts(runtime.chat_requests()[-1]) == ""
    plain.chat.completions.create(model="general", messages=q)
    assert _system_texts(runtime.chat_requests()[-1]) == ""

    gw.audit.flush()
    chats = [e for e in gw.audit.entries(client="webui") if e.action == "chat"]
    assert len(chats) == 2 and all(e.result_size == len(REPLY) for e in chats)
    assert chats[-1].items and chats[-1].detail == "routed to local:fake-model:1b"
    read = gw.audit.items_read("webui")
    assert read and all(i.startswith("chunk:") for i in read)
    assert gw.audit.items_read("plain") == []


def test_scopes_refuse_with_403(api):
    gw, srv = api
    no_ask = client(srv, grant(gw, "reader", read="public"))
    with pytest.raises(openai.PermissionDeniedError) as exc:
        no_ask.chat.completions.create(model="general", messages=[{"role": "user", "content": "hi"}])
    assert "may not use the model runtimes" in str(exc.value)
    with pytest.raises(openai.PermissionDeniedError):
        no_ask.embeddings.create(model="minilm-l6-v2-int8", input="hi")
    with pytest.raises(openai.AuthenticationError):
        client(srv, "dmk_wrong").models.list()


def test_embeddings_are_the_local_embedder(api, core):
    gw, srv = api
    oa = client(srv, grant(gw, "continue", ask=True))
    texts = ["tomatoes need water", "flights to Lisbon"]
    want = core.embedder().embed(texts)
    got = oa.embeddings.create(model="minilm-l6-v2-int8", input=texts)  # base64 on the wire
    assert [d.index for d in got.data] == [0, 1]
    assert np.allclose(np.array([d.embedding for d in got.data]), want, atol=1e-6)
    floats = oa.embeddings.create(model="embed", input="tomatoes need water", encoding_format="float")
    assert np.allclose(floats.data[0].embedding, want[0], atol=1e-6)
    with pytest.raises(openai.NotFoundError):
        oa.embeddings.create(model="text-embedding-3-small", input="x")
    # Every embedding model name the gateway guide shows is served.
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[3] / "docs" / "gateway.md").read_text(encoding="utf-8")
    shown = set(re.findall(r'embeddings\.create\(model="([^"]+)"', guide))
    shown |= set(re.findall(r"name: Deskmind embeddings\n(?:\s+\w+: .*\n)*?\s+model: (\S+)", guide))
    assert len(shown) >= 1, "the guide shows no embedding model name"
    for name in sorted(shown):
        got = oa.embeddings.create(model=name, input="tomatoes need water", encoding_format="float")
        assert np.allclose(got.data[0].embedding, want[0], atol=1e-6), name


def test_runtime_failures_fall_back_then_report_clearly(core, memory):
    with FakeLLMServer(reply=Reply("first"), faults=Faults(status=500, message="out of memory")) as bad, \
            FakeLLMServer(reply=Reply("from the backup")) as good:
        gw, srv = serve(core, rules(bad.url, backup_url=good.url))
        try:
            oa = client(srv, grant(gw, "aider", ask=True))
            r = oa.chat.completions.create(model="general", messages=[{"role": "user", "content": "hi"}])
            assert r.choices[0].message.content == "from the backup"
            assert r.model_extra["deskmind"]["route"]["provider"] == "backup"
            with pytest.raises(openai.APIStatusError) as exc:
                oa.chat.completions.create(model="local:fake-model:1b", messages=[{"role": "user", "content": "hi"}])
            assert exc.value.status_code in (502, 503) and "out of memory" in str(exc.value)
            with pytest.raises(openai.APIStatusError) as exc:
                oa.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
            assert exc.value.status_code == 404 and "no-such-model" in str(exc.value)
            assert exc.value.body["code"] == "model_not_found"
        finally:
            srv.stop()


def test_the_cloud_only_with_the_clients_cloud_scope(core, memory, runtime):
    with FakeLLMServer(reply=Reply("from the cloud")) as sky:
        # These rules count a chat's own messages as public; memory passages keep their tags.
        gw, srv = serve(core, rules(runtime.url, cloud_url=sky.url, prompt_privacy="public"))
        try:
            q = [{"role": "user", "content": "When are the Lisbon flights?"}]
            local_only = client(srv, grant(gw, "local-only", ask=True, read="personal", ground=True))
            r = local_only.chat.completions.create(model="auto", messages=q)
            assert r.choices[0].message.content == REPLY and sky.chat_requests() == []
            cloudy = client(srv, grant(gw, "cloudy", ask=True, read="personal", ground=True, cloud=True))
            # A caller may mark its chat as more sensitive than the rules say: it stays here.
            r = cloudy.chat.completions.create(model="auto", messages=q,
                                               extra_body={"deskmind": {"prompt_privacy": "private"}})
            assert r.choices[0].message.content == REPLY and sky.chat_requests() == []
            r = cloudy.chat.completions.create(model="auto", messages=q)
            assert r.choices[0].message.content == "from the cloud"
            # The cloud zone's ceiling is public: the personal passage was withheld from it.
            assert "Lisbon leave" not in _system_texts(sky.chat_requests()[-1])
            assert r.model_extra["deskmind"]["route"]["withheld_items"]
        finally:
            srv.stop()


GUARDED = """
[defaults]
cloud = true
prompt_privacy = "{default}"

[providers.local]
kind = "openai"
url = "{local}"

[providers.sky]
kind = "openai"
url = "{sky}"
zone = "cloud"
models = ["gpt-fake"]

[classes]
general = ["local:fake-model:1b"]
sky = ["sky:gpt-fake"]

{first_rule}
[[rules]]
name = "private-stays-here"
privacy_at_least = "private"
zones = ["machine"]

[[rules]]
name = "public-may-go-out"
class = "sky"
zones = ["cloud", "machine"]
fallback = ["local:fake-model:1b"]
"""


def test_a_client_cannot_get_past_the_rules_by_naming_a_model_or_lowering_privacy(core, memory, runtime):
    from deskmind.core.routing.ledger import EgressLedger

    with FakeLLMServer(models=["gpt-fake"], reply=Reply("from the cloud")) as sky:
        gw, srv = serve(core, GUARDED.format(default="private", local=runtime.url, sky=sky.url,
                                             first_rule=""))
        try:
            q = [{"role": "user", "content": "What is my salary?"}]
            cloudy = client(srv, grant(gw, "cloudy", ask=True, read="private", ground=True, cloud=True))
            for model in ("sky:gpt-fake", "gpt-fake"):  # provider:model, or a name only sky lists
                with pytest.raises(openai.PermissionDeniedError) as exc:
                    cloudy.chat.completions.create(model=model, messages=q)
                msg = exc.value.body["message"]
                assert "cloud zone, which rule 'private-stays-here' does not allow" in msg
                assert "it allows: machine" in msg
            # Saying its messages are public does not lower the rules' verdict either.
            for model in ("general", "sky:gpt-fake"):
                with pytest.raises(openai.PermissionDeniedError) as exc:
                    cloudy.chat.completions.create(model=model, messages=q, stream=True,
                                                   extra_body={"deskmind": {"prompt_privacy": "public"}})
                assert "may only raise it" in exc.value.body["message"]
            # Within the rule's zones a named model is fine.
            r = cloudy.chat.completions.create(model="local:fake-model:1b", messages=q)
            assert r.choices[0].message.content == REPLY
        finally:
            srv.stop()
        assert sky.received == []
        assert EgressLedger(core.store).count() == 0

        # Public material, but a rule keeps every chat on this machine: the cloud model named
        # by a client with the cloud scope is still refused (the cloud's ceiling would allow it).
        keep_chats = '[[rules]]\nname = "chats-stay-here"\ntask = ["chat"]\nzones = ["machine"]\n'
        gw, srv = serve(core, GUARDED.format(default="public", local=runtime.url, sky=sky.url,
                                             first_rule=keep_chats))
        try:
            cloudy = client(srv, grant(gw, "cloudy", ask=True, cloud=True))
            with pytest.raises(openai.PermissionDeniedError) as exc:
                cloudy.chat.completions.create(model="sky:gpt-fake", messages=[{"role": "user", "content": "hi"}])
            assert "which rule 'chats-stay-here' does not allow" in exc.value.body["message"]
        finally:
            srv.stop()
        assert sky.received == [] and EgressLedger(core.store).count() == 0

        # Rules that let public chats out: a client without the cloud scope naming the cloud
        # model is refused; one with it gets there.
        gw, srv = serve(core, GUARDED.format(default="public", local=runtime.url, sky=sky.url,
                                             first_rule=""))
        try:
            q = [{"role": "user", "content": "Say hello"}]
            local_only = client(srv, grant(gw, "local-only", ask=True))
            with pytest.raises(openai.PermissionDeniedError) as exc:
                local_only.chat.completions.create(model="sky:gpt-fake", messages=q)
            assert "client local-only may not reach (rule 'public-may-go-out')" in exc.value.body["message"]
            assert sky.received == []
            cloudy = client(srv, grant(gw, "cloudy", ask=True, cloud=True))
            r = cloudy.chat.completions.create(model="sky:gpt-fake", messages=q)
            assert r.choices[0].message.content == "from the cloud" and len(sky.chat_requests()) == 1
        finally:
            srv.stop()
    gw.audit.flush()
    denied = [e for e in gw.audit.entries(limit=100) if e.action == "chat" and e.decision == "denied"]
    assert {e.client for e in denied} >= {"cloudy", "local-only"}


def test_mcp_ask_is_routed_cited_and_saved_only_with_write(api, runtime, core):
    gw, srv = api
    asker = grant(gw, "claude", read="public", ask=True)
    saver = grant(gw, "saver", read="public", ask=True, write=True)

    async def go():
        async with http_client(srv.url, asker) as c:
            a = data(await c.call_tool("ask", {"question": "When do I water the tomatoes?"}))
        async with http_client(srv.url, saver) as c:
            b = data(await c.call_tool("ask", {"question": "When do I water the tomatoes?"}))
        async with http_client(srv.url, grant(gw, "mute", read="public")) as c:
            refused = error_text(await c.call_tool("ask", {"question": "hi"}))
        return a, b, refused

    a, b, refused = asyncio.run(go())
    assert a["answer"] == REPLY and a["route"]["provider"] == "local"
    assert a["citations"] and a["citations"][0]["source"] == "deskmind://note/garden"
    assert a["saved_source_id"] is None and b["saved_source_id"] is not None
    assert core.store.get_source(b["saved_source_id"]).kind == "conversation"
    assert "may not ask" in refused
    assert "Dana" not in runtime.chat_requests()[-1].body.decode()


def test_fifty_concurrent_streaming_chats_complete(core, memory):
    with FakeLLMServer(reply=Reply(" ".join(f"word{i}" for i in range(40))),
                       faults=Faults(token_delay=0.005)) as rt:
        # The fake's listen backlog is small: 50 connections at once can wait for a SYN retry
        # (1 s), which is the fake's limit, not the gateway's; allow for it.
        gw, srv = serve(core, rules(rt.url), Timeouts(connect=10.0, first_token=30.0, stall=10.0,
                                                      request=10.0))
        try:
            token = grant(gw, "load", ask=True, rate=100, burst=100)

            async def one(oa: openai.AsyncOpenAI, i: int) -> str:
                stream = await oa.chat.completions.create(
                    model="general", stream=True, messages=[{"role": "user", "content": f"question {i}"}])
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            async def go() -> list[str]:
                async with openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key=token, max_retries=0,
                                              timeout=60) as oa:
                    return await asyncio.gather(*[one(oa, i) for i in range(50)])

            # A stand-in for the GUI thread of the tray app hosting the gateway in-process:
            # it wants to run every 10 ms; how late does it get while 50 streams run?
            lateness: list[float] = []
            stop = threading.Event()

            def gui_tick() -> None:
                while not stop.is_set():
                    t = time.perf_counter()
                    time.sleep(0.01)
                    lateness.append(time.perf_counter() - t - 0.01)

            ticker = threading.Thread(target=gui_tick)
            ticker.start()
            try:
                answers = asyncio.run(go())
            finally:
                stop.set()
                ticker.join()
        finally:
            srv.stop()
    assert answers == [rt.reply.text] * 50
    assert len(rt.chat_requests()) == 50
    lateness.sort()
    print(f"GUI-thread tick lateness during 50 streams: p50 {lateness[len(lateness) // 2] * 1000:.1f} ms, "
          f"max {lateness[-1] * 1000:.1f} ms")
    assert lateness[len(lateness) // 2] < 0.05  # a 10 ms tick is typically on time, not starved


def test_the_callers_own_tools_pass_through(core, memory):
    weather = {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    with FakeLLMServer(reply=Reply("", tool_calls=[("get_weather", {"city": "Lisbon"})])) as rt:
        gw, srv = serve(core, rules(rt.url))
        try:
            oa = client(srv, grant(gw, "agent", ask=True))
            q = [{"role": "user", "content": "Weather in Lisbon?"}]
            done = oa.chat.completions.create(model="general", messages=q, tools=[weather])
            call = done.choices[0].message.tool_calls[0]
            assert done.choices[0].finish_reason == "tool_calls"
            assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Lisbon"}
            sent = rt.chat_requests()[-1].json()
            assert sent["tools"][0]["function"]["name"] == "get_weather"

            streamed, finish = {}, None
            for chunk in oa.chat.completions.create(model="general", messages=q, tools=[weather], stream=True):
                for ch in chunk.choices:
                    for tc in ch.delta.tool_calls or []:
                        streamed.setdefault(tc.index, "")
                        streamed[tc.index] += tc.function.arguments or ""
                    finish = ch.finish_reason or finish
            assert finish == "tool_calls" and json.loads(streamed[0]) == {"city": "Lisbon"}

            # The caller ran it and sends the result back: the conversation reaches the model.
            follow = q + [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                          {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"}]
            oa.chat.completions.create(model="general", messages=follow, tools=[weather])
            msgs = rt.chat_requests()[-1].json()["messages"]
            assert msgs[-1] == {"role": "tool", "content": "sunny, 24 C", "tool_call_id": call.id}
            assert msgs[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
        finally:
            srv.stop()
