"""Discovery on loopback ports, the hub's inventory, runtime embedders, egress fail-closed."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from deskmind.core.embed.base import EmbedderSpec
from deskmind.core.embed.factory import create_embedder
from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.routing.config import parse_routing
from deskmind.core.runtimes import discovery
from deskmind.core.runtimes.base import ChatRequest, Message
from deskmind.core.runtimes.embeddings import RuntimeEmbedder
from deskmind.core.runtimes.hub import RuntimeHub
from tests.core.runtimes.conftest import transport
from tests.fakes.llm_server import FakeLLMServer


def test_discovery_finds_ollama_and_openai_servers_and_reports_them(network_guard):
    with FakeLLMServer(models=["llama3.2:3b", "nomic-embed-text"]) as a, FakeLLMServer(models=["qwen"]) as b, \
            FakeLLMServer() as gone:
        dead = gone.url
    with FakeLLMServer(models=["llama3.2:3b", "nomic-embed-text"]) as a, FakeLLMServer(models=["qwen"]) as b:
        targets = (discovery.Target("ollama", "ollama", a.url, "Ollama"),
                   discovery.Target("lmstudio", "openai", b.url, "LM Studio"),
                   discovery.Target("jan", "openai", dead, "Jan"),
                   discovery.Target("far", "openai", "http://10.255.255.1:1234", "not loopback"))

        async def main():
            async with RuntimeHub(parse_routing(""), targets=targets) as hub:
                return await hub.inventory()

        inv = asyncio.run(main())
        assert list(inv.providers) == ["ollama", "lmstudio"]
        assert inv.providers["ollama"].models == ["llama3.2:3b", "nomic-embed-text"]
        assert inv.providers["ollama"].loaded == ["llama3.2:3b"]
        assert inv.providers["lmstudio"].note == "discovered (LM Studio)"
        assert inv.machine_auto("general") == [("ollama", "llama3.2:3b"), ("lmstudio", "qwen")]
        assert all(r.path in ("/api/tags", "/api/ps", "/v1/models", "/api/show")
                   for r in a.received + b.received)
        # probes are loopback only: no connection to the non-loopback target was even tried
        # (the guard in tests/core/conftest.py records every attempt)
        assert network_guard.attempts == []


def test_env_override_of_discovery_targets():
    t = discovery.targets_from_env({"DESKMIND_DISCOVER": "box=ollama@127.0.0.1:5555, bad, x=openai@localhost:9"})
    assert [(x.name, x.kind, x.url) for x in t] == [("box", "ollama", "http://127.0.0.1:5555"),
                                                   ("x", "openai", "http://localhost:9")]
    assert discovery.targets_from_env({}) == discovery.USUAL_TARGETS


def test_request_outside_machine_without_ledger_is_refused(run):
    with FakeLLMServer() as srv:
        rt_t = transport(srv.url, zone="home")

        async def go():
            from deskmind.core.runtimes.ollama import OllamaRuntime
            async for _ in OllamaRuntime("far", rt_t).chat(
                    ChatRequest("fake-model:1b", [Message("user", "hi")], num_ctx=4096)):
                pass

        with pytest.raises(DeskmindError, match="without an egress ledger"):
            run(go())
        assert srv.received == []


def test_runtime_embedders_plug_into_the_spine():
    import deskmind.core.runtimes  # noqa: F401  (registers the prefixes)

    with FakeLLMServer(models=["nomic-embed-text"], embed_dim=16) as srv:
        emb = create_embedder(EmbedderSpec("ollama:nomic-embed-text", {"url": srv.url}))
        assert isinstance(emb, RuntimeEmbedder) and emb.dim == 16
        m = emb.embed(["alpha", "beta", "alpha"])
        assert m.shape == (3, 16) and np.allclose(np.linalg.norm(m, axis=1), 1, atol=1e-5)
        assert np.allclose(m[0], m[2]) and not np.allclose(m[0], m[1])
        o = create_embedder(EmbedderSpec("openai-compat:nomic-embed-text", {"url": srv.url}))
        assert np.allclose(o.embed_query("alpha"), m[0], atol=1e-6)
    with pytest.raises(UserInputError, match="only go to this machine"):
        RuntimeEmbedder("ollama:x", "https://embed.example.com")


def test_runtime_embedder_indexes_memory_in_its_own_index(core):
    import deskmind.core.runtimes  # noqa: F401
    from deskmind.core.memory.models import NewChunk, SourceDraft

    with FakeLLMServer(models=["nomic-embed-text"], embed_dim=16) as srv:
        emb = RuntimeEmbedder("ollama:nomic-embed-text", srv.url)
        idx = core.store.ensure_active_index(emb.model_id, emb.dim)
        text = "the cat sat on the mat"
        from deskmind.core.memory.store import text_hash

        core.store.put_source(SourceDraft(uri="deskmind://note/x", kind="note", text=text,
                                          chunks=[NewChunk(text)]), idx,
                              {text_hash(text): emb.embed([text])[0]})
        assert core.store.active_index().model_id == "ollama:nomic-embed-text"
        from deskmind.core.memory.search import HybridSearcher

        hits = HybridSearcher(core.store, lambda _m: emb).search("cat", mode="vector").hits
        assert hits and hits[0].text == text


@pytest.mark.parametrize("style", ["max_context_length", "max_model_len", "meta"])
def test_inventory_learns_context_windows_and_routing_uses_them(style):
    from deskmind.core.routing.router import RouteRequest, route_request

    with FakeLLMServer(models=["small:1b", "other:7b", "nomic-embed-text", "named:3b"],
                       context_length=2048) as ollama, \
            FakeLLMServer(models=["big"], context_length=32768, v1_context=style) as lms, \
            FakeLLMServer(models=["quiet"]) as plain:
        targets = (discovery.Target("lmstudio", "openai", lms.url, "LM Studio"),
                   discovery.Target("jan", "openai", plain.url, "Jan"))
        cfg = parse_routing(f'[providers.ollama]\nkind = "ollama"\nurl = "{ollama.url}"\n'
                            '[classes]\ncoder = ["auto", "ollama:named:3b"]\n')

        async def main():
            async with RuntimeHub(cfg, targets=targets) as hub:
                first = await hub.inventory()
                again = await hub.inventory(refresh=True)
                rt = await hub.runtime("ollama")
                window = await rt.context_length("small:1b")
                return first, again, window

        inv, again, window = asyncio.run(main())
        shows = [r.json()["model"] for r in ollama.received if r.path == "/api/show"]
    assert inv.providers["ollama"].context == {"small:1b": 2048, "named:3b": 2048}
    assert inv.providers["lmstudio"].context == {"big": 32768}
    assert inv.providers["jan"].context == {}  # reports none: unknown, never guessed
    assert again.providers["ollama"].context == inv.providers["ollama"].context
    # Asked once for the life of the hub, not per inventory, and only for the models routing
    # may pick (the loaded one for "auto", one a class names): not the others, not embedders.
    # The runtime reuses the answer for its num_ctx.
    assert sorted(shows) == ["named:3b", "small:1b"] and window == 2048

    # ~10k tokens: too much for the 2048-token window, fine for the 32k one.
    d = route_request(cfg, inv, RouteRequest("x" * 30000))
    assert d.candidates[0].ref == "lmstudio:big"
    assert "ollama:small:1b: needs ~11024 tokens, model window is 2048" in d.skipped
    small = route_request(cfg, inv, RouteRequest("hello"))
    assert small.candidates[0].ref == "ollama:small:1b"
