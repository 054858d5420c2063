"""Sampling options reach each runtime in its own protocol's words, or are refused by name
before anything is sent."""

from __future__ import annotations

import asyncio

import pytest

from deskmind.core.runtimes.anthropic import AnthropicRuntime
from deskmind.core.runtimes.base import ChatRequest, Message, Sampling, Tool, UnsupportedParameter
from deskmind.core.runtimes.llamacpp import LlamaCppRuntime
from tests.core.runtimes.conftest import transport
from tests.fakes.llm_server import FakeLLMServer

TOOL = Tool("lookup", "look a word up", {"type": "object", "properties": {}})


def chat(rt, req):
    async def main():
        return [ev async for ev in rt.chat(req)]
    return asyncio.run(main())


def test_anthropic_gets_its_own_names_and_refuses_what_it_lacks():
    with FakeLLMServer() as srv:
        rt = AnthropicRuntime("claude", transport(srv.url))
        chat(rt, ChatRequest("fake-model:1b", [Message("user", "hi")], tools=[TOOL], sampling=Sampling(
            stop=["END"], top_p=0.5, user="person-1",
            tool_choice={"type": "function", "function": {"name": "lookup"}})))
        sent = srv.chat_requests()[-1].json()
        assert sent["stop_sequences"] == ["END"] and sent["top_p"] == 0.5
        assert sent["metadata"] == {"user_id": "person-1"}
        assert sent["tool_choice"] == {"type": "tool", "name": "lookup"}
        for sampling, named in ((Sampling(seed=1), "seed"),
                                (Sampling(presence_penalty=0.5), "presence_penalty"),
                                (Sampling(response_format={"type": "json_object"}), "response_format")):
            with pytest.raises(UnsupportedParameter, match=rf"claude \(anthropic\) cannot honour {named}"):
                chat(rt, ChatRequest("fake-model:1b", [Message("user", "hi")], sampling=sampling))
        assert len(srv.chat_requests()) == 1


def test_llama_cpp_takes_openai_sampling_fields_and_refuses_a_user():
    req = ChatRequest("m", [Message("user", "hi")], sampling=Sampling(
        stop=["\n"], seed=3, top_p=0.7, frequency_penalty=0.1,
        response_format={"type": "json_object"}))
    assert LlamaCppRuntime.sampling_options(req) == {
        "stop": ["\n"], "seed": 3, "top_p": 0.7, "frequency_penalty": 0.1,
        "response_format": {"type": "json_object"}}
    from deskmind.core.runtimes.engines import EnginePool
    from deskmind.core.runtimes.llama_engine import LlamaEngine
    from deskmind.core.runtimes.llamacpp import default_model_path

    pool = EnginePool(lambda path: LlamaEngine(path, n_ctx=512, threads=2), keep_alive=-1)
    rt = LlamaCppRuntime({"m": default_model_path()}, pool)
    try:
        with pytest.raises(UnsupportedParameter, match=r"embedded \(llamacpp\) cannot honour user"):
            chat(rt, ChatRequest("m", [Message("user", "hi")], max_tokens=4,
                                 sampling=Sampling(user="u")))
    finally:
        rt.close()
        pool.close()
