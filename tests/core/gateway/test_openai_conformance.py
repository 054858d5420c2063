"""The OpenAI-compatible endpoint behaves as clients expect: driven by the official ``openai``
client against loopback runtimes speaking the real OpenAI and Ollama protocols."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from deskmind.core.gateway.clients import ClientRegistry
from tests.core.gateway.conftest import grant
from tests.core.gateway.test_openai_api import client, serve
from tests.fakes.llm_server import (
    OLLAMA_PROMPT_TOKENS, OPENAI_PROMPT_TOKENS, FakeLLMServer, Faults, Reply,
)

REPLY = "The tomatoes need water on Tuesday and Friday."
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "look a word up",
                                            "parameters": {"type": "object", "properties": {}}}}]


def rules(openai_url: str, ollama_url: str, cloud_url: str | None = None) -> str:
    text = f"""
[defaults]
cloud = {"true" if cloud_url else "false"}
prompt_privacy = "personal"

[providers.compat]
kind = "openai"
url = "{openai_url}"

[providers.oll]
kind = "ollama"
url = "{ollama_url}"
"""
    if cloud_url:
        text += f'\n[providers.sky]\nkind = "openai"\nurl = "{cloud_url}"\nzone = "cloud"\n'
        text += '\n[zones.ceiling]\nhome = "personal"\ncloud = "personal"\n'
    return text + f"""
[classes]
general = ["compat:fake-model:1b"]
llama = ["oll:fake-model:1b"]

[[rules]]
name = "anywhere-public"
zones = ["machine"{', "cloud"' if cloud_url else ''}]
on_private = "withhold"
"""


@pytest.fixture
def two_runtimes():
    with FakeLLMServer(reply=Reply(REPLY)) as compat, FakeLLMServer(reply=Reply(REPLY)) as oll:
        yield compat, oll


@pytest.fixture
def api(core, memory, two_runtimes):
    compat, oll = two_runtimes
    gw, srv = serve(core, rules(compat.url, oll.url))
    yield gw, srv
    srv.stop()
    gw.audit.flush()


PARAMS: dict[str, Any] = {
    "stop": ["\n\n", "END"], "seed": 7, "top_p": 0.5, "frequency_penalty": 0.25,
    "presence_penalty": -0.5, "response_format": {"type": "json_object"}, "user": "person-1",
}
ASK = [{"role": "user", "content": "When do the tomatoes need water?"}]


def test_request_parameters_reach_an_openai_compatible_runtime(api, two_runtimes):
    gw, srv = api
    compat, _ = two_runtimes
    oa = client(srv, grant(gw, "aider", ask=True))
    oa.chat.completions.create(model="general", messages=ASK, tools=TOOLS, tool_choice="required",
                               **PARAMS)
    sent = compat.chat_requests()[-1].json()
    assert {k: sent[k] for k in PARAMS} == PARAMS
    assert sent["tool_choice"] == "required" and sent["tools"][0]["function"]["name"] == "lookup"
    named = {"type": "function", "function": {"name": "lookup"}}
    oa.chat.completions.create(model="general", messages=ASK, tools=TOOLS, tool_choice=named,
                               response_format={"type": "json_schema", "json_schema": {
                                   "name": "answer", "schema": {"type": "object"}}})
    sent = compat.chat_requests()[-1].json()
    assert sent["tool_choice"] == named
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": {"type": "object"}}}


def test_request_parameters_reach_ollama_or_are_refused_by_name(api, two_runtimes):
    gw, srv = api
    _, oll = two_runtimes
    oa = client(srv, grant(gw, "aider", ask=True))
    ollama_params = {k: v for k, v in PARAMS.items() if k != "user"}
    oa.chat.completions.create(model="llama", messages=ASK, **ollama_params)
    sent = oll.chat_requests()[-1].json()
    opts = sent["options"]
    assert opts["stop"] == ["\n\n", "END"] and opts["seed"] == 7 and opts["top_p"] == 0.5
    assert opts["frequency_penalty"] == 0.25 and opts["presence_penalty"] == -0.5
    assert sent["format"] == "json"
    oa.chat.completions.create(model="llama", messages=ASK, response_format={
        "type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object",
                                                                       "required": ["when"]}}})
    assert oll.chat_requests()[-1].json()["format"] == {"type": "object", "required": ["when"]}

    before = len(oll.chat_requests())
    for extra, named in (({"user": "person-1"}, "user"),
                         ({"tools": TOOLS, "tool_choice": "required"}, "tool_choice")):
        with pytest.raises(openai.BadRequestError) as err:
            oa.chat.completions.create(model="llama", messages=ASK, **extra)
        assert named in err.value.body["message"] and "oll (ollama)" in err.value.body["message"]
    assert len(oll.chat_requests()) == before  # refused before anything was sent


def test_out_of_range_parameters_are_a_400_naming_them(api):
    gw, srv = api
    oa = client(srv, grant(gw, "aider", ask=True))
    for bad, where in (({"top_p": 3}, "top_p"), ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
                       ({"response_format": {"type": "xml"}}, "response_format"),
                       ({"tool_choice": "sometimes"}, "tool_choice"),
                       ({"tool_choice": "required"}, "body: Value error, tool_choice names a tool")):
        with pytest.raises(openai.BadRequestError) as err:
            oa.chat.completions.create(model="general", messages=ASK, extra_body=bad)
        assert err.value.body["message"].startswith(where)


@pytest.mark.parametrize("model, prompt_tokens", [("general", OPENAI_PROMPT_TOKENS),
                                                  ("llama", OLLAMA_PROMPT_TOKENS)])
def test_usage_carries_the_upstream_token_counts(api, model, prompt_tokens):
    gw, srv = api
    oa = client(srv, grant(gw, "aider", ask=True))
    words = len(REPLY.split(" "))
    done = oa.chat.completions.create(model=model, messages=ASK)
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (prompt_tokens, words)
    assert done.usage.total_tokens == prompt_tokens + words
    usage = None
    for chunk in oa.chat.completions.create(model=model, messages=ASK, stream=True,
                                            stream_options={"include_usage": True}):
        usage = chunk.usage or usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (prompt_tokens, words)


def test_an_unknown_model_is_a_404_the_client_does_not_retry(api):
    gw, srv = api
    # The client's own retries are on: a 503 would be asked three times.
    oa = openai.OpenAI(base_url=srv.url + "/v1",
                       api_key=grant(gw, "webui", ask=True, read="personal", ground=True))
    with pytest.raises(openai.NotFoundError) as err:
        oa.chat.completions.create(model="no-such-model", messages=ASK)
    assert err.value.body["code"] == "model_not_found" and "no-such-model" in err.value.body["message"]
    gw.audit.flush()
    chats = [e for e in gw.audit.entries(client="webui") if e.action == "chat"]
    assert len(chats) == 1 and chats[0].decision == "failed"


def test_a_refused_chat_searches_no_memory_and_logs_no_reads(core, memory, two_runtimes):
    compat, oll = two_runtimes
    with FakeLLMServer(reply=Reply("from the cloud")) as sky:
        gw, srv = serve(core, rules(compat.url, oll.url, cloud_url=sky.url))
        try:
            oa = client(srv, grant(gw, "webui", ask=True, read="personal", ground=True))
            refusals = [
                ({"model": "no-such-model"}, openai.NotFoundError),
                ({"model": "sky:fake-model:1b"}, openai.PermissionDeniedError),  # no cloud scope
                ({"model": "general", "extra_body": {"deskmind": {"prompt_privacy": "public"}}},
                 openai.PermissionDeniedError),
            ]
            for kw, error in refusals:
                with pytest.raises(error):
                    oa.chat.completions.create(messages=[{"role": "user", "content": "When are the Lisbon flights?"}], **kw)
            gw.audit.flush()
            assert [e.action for e in gw.audit.entries(client="webui")
                    if e.action != "chat"] == []  # no search_memory
            assert gw.audit.items_read("webui") == []
            # The same question allowed does search memory and logs what it read.
            oa.chat.completions.create(model="general", messages=[{"role": "user", "content": "When are the Lisbon flights?"}])
            gw.audit.flush()
            assert "search_memory" in [e.action for e in gw.audit.entries(client="webui")]
            assert gw.audit.items_read("webui") != []
        finally:
            srv.stop()
            gw.audit.flush()
        assert sky.received == []


@pytest.mark.parametrize("revoker", ["gateway", "another process"])
def test_revoking_a_client_cuts_its_open_stream_at_once(core, memory, revoker):
    slow = FakeLLMServer(reply=Reply("word " * 400), faults=Faults(token_delay=0.05))
    with slow, FakeLLMServer() as oll:
        gw, srv = serve(core, rules(slow.url, oll.url))
        try:
            oa = client(srv, grant(gw, "aider", ask=True))
            stream = oa.chat.completions.create(model="general", messages=ASK, stream=True)
            got, revoked_at, ended_at, error = 0, None, None, None
            try:
                for chunk in stream:
                    got += sum(1 for c in chunk.choices if c.delta.content)
                    if got == 5 and revoked_at is None:
                        registry = gw.clients if revoker == "gateway" else ClientRegistry(core.store)
                        registry.revoke("aider")
                        revoked_at = time.monotonic()
            except openai.APIError as exc:
                error = exc
            ended_at = time.monotonic()
        finally:
            srv.stop()
            gw.audit.flush()
    assert revoked_at is not None and ended_at - revoked_at < 1.2, ended_at - revoked_at
    assert got < 40  # 400 words at 20 a second would take 20 s
    assert error is not None and "revoked" in str(error)
    chats = [e for e in gw.audit.entries(client="aider") if e.action == "chat"]
    assert chats and chats[-1].decision == "failed" and "revoked" in chats[-1].detail


def test_revoking_a_client_cuts_a_non_streamed_answer_too(core, memory):
    import threading

    slow = FakeLLMServer(reply=Reply("word " * 400), faults=Faults(token_delay=0.05))
    with slow, FakeLLMServer() as oll:
        gw, srv = serve(core, rules(slow.url, oll.url))
        try:
            oa = client(srv, grant(gw, "aider", ask=True))
            revoked_at: list[float] = []

            def revoke_soon() -> None:
                time.sleep(0.5)
                ClientRegistry(core.store).revoke("aider")
                revoked_at.append(time.monotonic())

            threading.Thread(target=revoke_soon, daemon=True).start()
            with pytest.raises(openai.PermissionDeniedError) as err:
                oa.chat.completions.create(model="general", messages=ASK)
            ended_at = time.monotonic()
        finally:
            srv.stop()
            gw.audit.flush()
    assert "revoked" in err.value.body["message"]
    assert revoked_at and ended_at - revoked_at[0] < 1.2
