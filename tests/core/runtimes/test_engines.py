"""One engine per model per process: shared by hubs and Core.complete, unloaded after the
keep-alive, reloaded on demand, and safe to close or unload while it generates (real SmolLM2
through xllamacpp)."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path

import pytest

from deskmind.core.errors import ModelUnavailableError, UserInputError
from deskmind.core.runtimes.base import ChatRequest, Message
from deskmind.core.config.sections import parse_keep_alive
from deskmind.core.runtimes.engines import EnginePool

needs_llama = pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None,
                                 reason="xllamacpp is not installed")


@pytest.fixture(scope="module")
def gguf() -> Path:
    from deskmind.core.runtimes.llamacpp import default_model_path

    return default_model_path()


def small_pool(keep_alive: float = -1, **engine_kw) -> EnginePool:
    from deskmind.core.runtimes.llama_engine import LlamaEngine

    return EnginePool(lambda p: LlamaEngine(p, n_ctx=4096, threads=2, **engine_kw),
                      keep_alive=keep_alive)


def question(model: str = "smollm2", text: str = "What is the capital of France?",
             max_tokens: int = 4) -> ChatRequest:
    return ChatRequest(model, [Message("user", text)], max_tokens=max_tokens, temperature=0)


async def answer(rt, req: ChatRequest) -> tuple[str, object]:
    parts, done = [], None
    async for ev in rt.chat(req):
        if ev.kind == "token":
            parts.append(ev.text)
        else:
            done = ev
    return "".join(parts), done


def wait_until(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


# -- the keep-alive setting -------------------------------------------------------------


@pytest.mark.parametrize("value,seconds", [(300, 300.0), ("5m", 300.0), ("30s", 30.0),
                                           ("1.5h", 5400.0), ("250ms", 0.25), (0, 0.0),
                                           ("0", 0.0), (-1, -1.0), ("-1", -1.0)])
def test_keep_alive_reads_like_ollamas(value, seconds):
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value,why", [(-5, "cannot be negative"), ("-2m", "cannot be negative"),
                                       ("soon", "must be a duration"), (True, "must be a duration"),
                                       ("5 minutes", "must be a duration"), ([5], "must be a duration"),
                                       (float("nan"), "is too long"), (1e12, "is too long")])
def test_a_bad_keep_alive_is_refused_clearly(value, why):
    with pytest.raises(UserInputError, match=rf"\[engine\] keep_alive {why}"):
        parse_keep_alive(value)


def test_keep_alive_comes_from_settings_toml(deskmind_home):
    from deskmind.core.config.settings import load_settings

    path = deskmind_home / "config" / "settings.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    assert load_settings(path).engine.keep_alive_s() == 300.0  # Ollama's default
    path.write_text('[engine]\nkeep_alive = "10s"\n', encoding="utf-8")
    assert load_settings(path).engine.keep_alive_s() == 10.0
    path.write_text('[engine]\nkeep_alive = -1\n', encoding="utf-8")
    assert load_settings(path).engine.keep_alive_s() == -1.0
    path.write_text('[engine]\nkeep_alive = "later"\n', encoding="utf-8")
    with pytest.raises(UserInputError, match=r"settings.toml \[engine\] keep_alive must be a duration"):
        load_settings(path)
    path.write_text('[engine]\nkeep_alive = true\n', encoding="utf-8")
    with pytest.raises(UserInputError, match=r"\[engine\] keep_alive must be a duration .*not True"):
        load_settings(path)


# -- one engine per model, shared -------------------------------------------------------


@needs_llama
def test_two_hubs_load_the_model_once(gguf, deskmind_home):
    from deskmind.core.app import Core
    from deskmind.core.ask.session import make_hub
    from deskmind.core.routing.config import parse_routing

    async def one_hub(core) -> str:
        async with make_hub(core, parse_routing(""), targets=()) as hub:
            await hub.inventory()
            rt = await hub.runtime("embedded")
            text, done = await answer(rt, question("auto"))
            assert done.kind == "done"
            return text

    with Core() as core:
        a = asyncio.run(one_hub(core))
        b = asyncio.run(one_hub(core))
        assert a.strip() and a == b
        assert core.engines.loads == {gguf.resolve(): 1}
        assert core.engines.loaded() == [gguf.resolve()]  # still loaded: keep-alive is 5 min


@needs_llama
@pytest.mark.timeout(1200)  # two answers capped at 1024 tokens each: minutes on a busy machine
def test_two_complete_calls_load_the_model_once(gguf, deskmind_home, monkeypatch):
    from deskmind.core.app import Core

    monkeypatch.setenv("DESKMIND_DISCOVER", "")  # no model server: the embedded model answers
    with Core() as core:
        first = core.complete("meeting-minutes", "Summarise: we met and agreed on Friday.")
        second = core.complete("clean-note", "um so buy milk uh tomorrow")
        assert first.strip() and second.strip()
        assert core.engines.loads == {gguf.resolve(): 1}


# -- keep-alive -------------------------------------------------------------------------


@needs_llama
def test_idle_model_unloads_after_keep_alive_and_reloads_on_demand(gguf, deskmind_home):
    from deskmind.core.app import Core
    from deskmind.core.ask.session import make_hub
    from deskmind.core.routing.config import parse_routing

    (deskmind_home / "config").mkdir(parents=True, exist_ok=True)
    (deskmind_home / "config" / "settings.toml").write_text("[engine]\nkeep_alive = \"1s\"\n",
                                                            encoding="utf-8")

    async def ask_once(core) -> None:
        async with make_hub(core, parse_routing(""), targets=()) as hub:
            await hub.inventory()
            await answer(await hub.runtime("embedded"), question("auto"))

    with Core() as core:
        assert core.engines.keep_alive == 1.0
        asyncio.run(ask_once(core))
        key = gguf.resolve()
        assert core.engines.loaded() == [key]  # kept while the keep-alive runs
        assert wait_until(lambda: core.engines.loaded() == [], timeout=15)
        assert core.engines.loads[key] == 1
        asyncio.run(ask_once(core))  # the next question loads it again
        assert core.engines.loads[key] == 2


@needs_llama
@pytest.mark.parametrize("keep_alive", [0, -1])
def test_keep_alive_zero_unloads_at_once_and_minus_one_never(gguf, keep_alive):
    from deskmind.core.runtimes.llamacpp import LlamaCppRuntime

    pool = small_pool(keep_alive=keep_alive)
    try:
        rt = LlamaCppRuntime({"smollm2": gguf}, pool)
        asyncio.run(answer(rt, question()))
        if keep_alive == 0:
            assert pool.loaded() == []  # released and freed before the stream ended
        else:
            time.sleep(1.0)
            assert pool.loaded() == [gguf.resolve()]
        asyncio.run(answer(rt, question()))
        assert pool.loads[gguf.resolve()] == (2 if keep_alive == 0 else 1)
    finally:
        pool.close()
    with pytest.raises(UserInputError, match="shut down"):
        pool.acquire(gguf)


# -- closing and unloading while it generates --------------------------------------------


async def _stream_until_first_token(rt, req):
    got: list = []
    errors: list = []

    async def consume():
        try:
            async for ev in rt.chat(req):
                got.append(ev)
        except Exception as exc:  # what the reader of the stream is told
            errors.append(exc)

    task = asyncio.create_task(consume())
    while not got and not task.done():
        await asyncio.sleep(0.01)
    return task, got, errors


@needs_llama
def test_closing_the_hub_while_it_streams_stops_it_and_keeps_the_engine(gguf, deskmind_home):
    from deskmind.core.app import Core
    from deskmind.core.ask.session import make_hub
    from deskmind.core.routing.config import parse_routing

    long = question("auto", "Count from one to two hundred, one number per line.", max_tokens=400)

    async def run(core):
        hub = make_hub(core, parse_routing(""), targets=())
        await hub.inventory()
        task, got, errors = await _stream_until_first_token(await hub.runtime("embedded"), long)
        assert got and not task.done()
        await asyncio.wait_for(hub.aclose(), timeout=60)  # returns once the generation left
        await asyncio.wait_for(task, timeout=10)
        engine = core.engines.acquire(gguf)
        try:
            assert not engine.busy
        finally:
            core.engines.release(gguf)
        return got, errors

    with Core() as core:
        got, errors = asyncio.run(run(core))
        assert len(got) < 400 and not any(e.kind == "done" for e in got)
        assert len(errors) == 1 and isinstance(errors[0], ModelUnavailableError)
        assert "closed while it answered" in str(errors[0])
        # another hub answers on the same engine, which was never unloaded
        async def again():
            async with make_hub(core, parse_routing(""), targets=()) as hub:
                await hub.inventory()
                return await answer(await hub.runtime("embedded"), question("auto"))
        text, done = asyncio.run(again())
        assert done.kind == "done" and core.engines.loads[gguf.resolve()] == 1


@needs_llama
def test_unloading_a_model_while_it_streams_cancels_waits_and_reloads(gguf):
    from deskmind.core.runtimes.llamacpp import LlamaCppRuntime

    pool = small_pool()
    rt = LlamaCppRuntime({"smollm2": gguf}, pool)
    long = question(text="Count from one to two hundred, one number per line.", max_tokens=400)

    async def run():
        task, got, errors = await _stream_until_first_token(rt, long)
        engine = pool.acquire(gguf)
        pool.release(gguf)
        assert engine.busy
        assert await asyncio.to_thread(pool.unload, gguf)  # a swap: returns once it is free
        assert not engine.busy and engine.server is None and pool.loaded() == []
        await asyncio.wait_for(task, timeout=10)
        return got, errors

    try:
        got, errors = asyncio.run(run())
        assert len(got) < 400
        assert len(errors) == 1 and "unloaded while it answered" in str(errors[0])
        text, done = asyncio.run(answer(rt, question()))  # loaded again on demand
        assert done.kind == "done" and pool.loads[gguf.resolve()] == 2
    finally:
        pool.close()


@needs_llama
def test_cancel_during_a_long_prompt_takes_effect_within_a_batch(gguf):
    """llama.cpp calls back after each prompt batch (return_progress): a cancel lands at the
    next batch boundary instead of after the whole prompt."""
    from deskmind.core.runtimes.llamacpp import LlamaCppRuntime

    pool = small_pool(n_batch=64)
    rt = LlamaCppRuntime({"smollm2": gguf}, pool)
    filler = " ".join(f"Note {i}: the boiler was serviced and the garden fence painted." for i in range(60))

    def prompt(tag: str) -> ChatRequest:  # a different start each time: no prompt cache reuse
        return question(text=f"{tag}. {filler} What was serviced?", max_tokens=1)

    try:
        asyncio.run(answer(rt, question()))  # loaded, warm
        t = time.perf_counter()
        _, done = asyncio.run(answer(rt, prompt("Alpha")))
        full = time.perf_counter() - t
        assert done.usage.prompt_tokens > 750  # a dozen batches of 64 or more

        async def cancelled() -> float:
            task = asyncio.create_task(answer(rt, prompt("Bravo")))
            await asyncio.sleep(full * 0.15)  # inside prompt evaluation
            assert not task.done()
            task.cancel()
            start = time.perf_counter()
            with pytest.raises(asyncio.CancelledError):
                await task
            engine = pool.acquire(gguf)
            try:
                # the next user gets the engine once llama.cpp dropped the task
                await asyncio.to_thread(engine._lock.acquire)
                engine._lock.release()
            finally:
                pool.release(gguf)
            return time.perf_counter() - start

        freed = asyncio.run(cancelled())
        assert freed < full * 0.5, (freed, full)
    finally:
        pool.close()


class CountingEngine:
    """A stand-in for a loaded model that only records being closed (the pool's own logic)."""

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("keep_alive", [-1, 300])
def test_a_retired_model_is_freed_at_once_or_when_its_last_user_is_done(tmp_path, keep_alive):
    made: list[CountingEngine] = []
    pool = EnginePool(lambda p: made.append(CountingEngine()) or made[-1], keep_alive=keep_alive)
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    pool.preload(a)
    assert pool.loaded() == [a.resolve()] and made[0].closed == 0   # kept after its use
    assert pool.retire(a) and made[0].closed == 1 and pool.loaded() == []
    assert not pool.retire(a)                                         # nothing left to free
    engine = pool.acquire(b)
    assert pool.retire(b) and engine.closed == 0                      # in use: not yet
    pool.release(b)
    assert engine.closed == 1 and pool.loaded() == []
    pool.acquire(b)                                                   # used again: loaded again,
    pool.release(b)                                                   # and kept as any other
    assert made[-1].closed == 0 and pool.loaded() == [b.resolve()] and pool.loads[b.resolve()] == 2
    pool.close()


def test_threads_follow_the_load_when_a_model_loads():
    from deskmind.core.runtimes.llama_engine import threads_for_load

    assert threads_for_load(cores=2, load=0.4) == 2
    assert threads_for_load(cores=2, load=2.0) == 1      # every core busy: one thread
    assert threads_for_load(cores=2, load=7.5) == 1
    assert threads_for_load(cores=8, load=3.0) == 4      # llama.cpp gains little past four
    assert threads_for_load(cores=1, load=0.0) == 1


_LOAD_AND_CLOSE = """
import sys
from deskmind.core.runtimes.llama_engine import LlamaEngine
for i in range(int(sys.argv[2])):
    LlamaEngine(sys.argv[1], threads=1).close()
    print(i, flush=True)
"""


@needs_llama
def test_closing_an_engine_right_after_it_loads_never_hangs(gguf):
    # llama.cpp's server could hang in its destructor when freed before its loop ran a task:
    # 15 loads closed at once, in a child so that a hang cannot stop the test run.
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", _LOAD_AND_CLOSE, str(gguf), "15"],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == [str(i) for i in range(15)]
