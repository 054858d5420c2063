"""Runtime kinds come from one registry: a kind registered there is accepted by the routing
rules, probed and built by the hub, offered by the CLI; one that is not is refused everywhere."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest

from deskmind.core.routing.config import RoutingConfigError, parse_routing
from deskmind.core.runtimes.base import ChatRequest, Message
from deskmind.core.runtimes.discovery import probe_openai
from deskmind.core.runtimes.hub import RuntimeHub
from deskmind.core.runtimes.kinds import RUNTIME_KINDS, RuntimeKind, RuntimeKinds
from deskmind.core.secrets import SecretStore
from tests.fakes.llm_server import FakeLLMServer, Reply


class Built:
    """What the test kind's factory made, so the test can see the hub used it."""

    names: list[str] = []


def _build(name: str, transport: Any) -> Any:
    from deskmind.core.runtimes.openai_compat import OpenAICompatRuntime

    Built.names.append(name)
    return OpenAICompatRuntime(name, transport)


MOCKINGBIRD = RuntimeKind("mockingbird", "A server that speaks OpenAI's API", build=_build,
                          probe=probe_openai)


def rules(url: str) -> str:
    return f"""
[providers.bird]
kind = "mockingbird"
url = "{url}"

[classes]
general = ["bird:fake-model:1b"]

[[rules]]
name = "only"
zones = ["machine"]
"""


@pytest.fixture
def registered() -> Iterator[RuntimeKind]:
    RUNTIME_KINDS.register(MOCKINGBIRD)
    try:
        yield MOCKINGBIRD
    finally:
        RUNTIME_KINDS.unregister(MOCKINGBIRD.name)


def test_config_validation_lists_the_registrys_kinds():
    reg = RuntimeKinds()
    reg.register(MOCKINGBIRD)
    cfg = parse_routing(rules("http://127.0.0.1:9"), kinds=reg)
    assert cfg.providers["bird"].kind == "mockingbird"
    with pytest.raises(RoutingConfigError, match=r"unknown provider kind 'ollama' \(expected one of: mockingbird\)"):
        parse_routing(rules("http://127.0.0.1:9").replace('"mockingbird"', '"ollama"'), kinds=reg)
    # The application's registry does not know the test kind, and names its own.
    with pytest.raises(RoutingConfigError) as err:
        parse_routing(rules("http://127.0.0.1:9"))
    assert "unknown provider kind 'mockingbird'" in str(err.value)
    assert "ollama, openai, anthropic, llamacpp" in str(err.value)


def test_a_registered_kind_is_probed_built_and_answers_through_the_hub(registered):
    Built.names.clear()
    with FakeLLMServer(reply=Reply("tweet tweet")) as srv:
        cfg = parse_routing(rules(srv.url))

        async def main() -> tuple[Any, str]:
            async with RuntimeHub(cfg, targets=(), secrets=SecretStore(environ={})) as hub:
                inv = await hub.inventory()
                rt = await hub.runtime("bird")
                text = "".join([ev.text async for ev in rt.chat(ChatRequest(
                    "fake-model:1b", [Message("user", "hi")], max_tokens=8)) if ev.kind == "token"])
                return inv.providers["bird"], text

        state, text = asyncio.run(main())
    assert state.available and state.models == ["fake-model:1b"] and state.kind == "mockingbird"
    assert text == "tweet tweet" and Built.names == ["bird"]
    assert any(r.path == "/v1/models" for r in srv.received)  # probed with the kind's probe


def test_the_cli_offers_the_registered_kinds(registered, capsys):
    from deskmind.cli.main import build_parser

    args = build_parser().parse_args(["models", "--kind", "mockingbird", "--kind", "ollama"])
    assert args.kind == ["mockingbird", "ollama"]
    RUNTIME_KINDS.unregister("mockingbird")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["models", "--kind", "mockingbird"])
    assert "invalid choice: 'mockingbird'" in capsys.readouterr().err
