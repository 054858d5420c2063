"""routing.toml edits for runtimes: disable a discovered server or the embedded model, remove one."""

from __future__ import annotations

import asyncio

import pytest

from deskmind.core.errors import UserInputError
from deskmind.core.routing.config import parse_routing
from deskmind.core.routing.editor import RoutingFile
from deskmind.core.runtimes import discovery
from deskmind.core.runtimes.hub import RuntimeHub
from tests.fakes.llm_server import FakeLLMServer


def inventory(cfg, targets, embedded=None):
    async def main():
        async with RuntimeHub(cfg, targets=targets, embedded=embedded) as hub:
            return await hub.inventory()

    return asyncio.run(main())


def test_a_disabled_discovered_server_stays_off(tmp_path):
    rf = RoutingFile(tmp_path)
    with FakeLLMServer(models=["llama3.2:3b"]) as srv:
        targets = (discovery.Target("ollama", "ollama", srv.url, "Ollama"),)
        assert list(inventory(rf._config(), targets).providers) == ["ollama"]
        before = len(srv.received)
        cfg = rf.set_runtime_enabled("ollama", False, kind="ollama", url=srv.url)
        assert cfg.providers["ollama"].enabled is False
        inv = inventory(parse_routing(rf.text()), targets, embedded=lambda: None)
        assert list(inv.providers) == ["embedded"]          # neither listed nor rediscovered
        assert len(srv.received) == before                  # nor probed
        rf.set_runtime_enabled("ollama", True)
        assert "ollama" in inventory(parse_routing(rf.text()), targets).providers


def test_the_embedded_runtime_disabled_then_back_to_built_in(tmp_path):
    rf = RoutingFile(tmp_path)
    assert [e.name for e in rf.runtimes(embedded=True)] == ["embedded"]
    rf.set_runtime_enabled("embedded", False, kind="llamacpp")
    assert [(e.name, e.enabled, e.in_file) for e in rf.runtimes(embedded=True)] == [("embedded", False, True)]
    assert inventory(parse_routing(rf.text()), (), embedded=lambda: None).providers == {}
    rf.set_runtime_enabled("embedded", True)
    assert "embedded" not in rf.doc().get("providers", {})
    with pytest.raises(UserInputError, match="can only be disabled"):
        rf.remove_runtime("embedded")


def test_remove_is_refused_while_a_class_or_rule_uses_it(tmp_path):
    rf = RoutingFile(tmp_path)
    rf.save_text('[providers.box]\nkind = "ollama"\nurl = "http://127.0.0.1:9"\n'
                 '[classes]\ncoder = ["box:qwen"]\n'
                 '[[rules]]\nname = "r"\nfallback = ["box:qwen"]\n')
    with pytest.raises(UserInputError, match="class 'coder', rule 'r'"):
        rf.remove_runtime("box")
    assert "box" in rf._config().providers
    with pytest.raises(UserInputError, match="'nope' is not in routing.toml"):
        rf.remove_runtime("nope")


def test_enabled_must_be_true_or_false():
    with pytest.raises(UserInputError, match="enabled.*true or false"):
        parse_routing('[providers.box]\nkind = "ollama"\nurl = "http://127.0.0.1:9"\nenabled = "no"\n')
