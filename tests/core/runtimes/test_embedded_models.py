"""The built-in provider answers with the GGUF chosen in models.toml, through that file's own
chat template (real SmolLM2 weights, re-labelled with the gguf package's own tool)."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from deskmind.core.runtimes.base import ChatRequest, Message

pytestmark = pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None,
                                reason="xllamacpp is not installed")

PREAMBLE = "Deskmind keeps notes on this computer. " * 30
# ChatML as SmolLM2 speaks it, with a long system preamble of its own: only a runtime that
# renders this file's template sends those tokens.
TEMPLATE = ("{{ '<|im_start|>system\\n" + PREAMBLE + "<|im_end|>\\n' }}"
            "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
            "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


@pytest.fixture(scope="module")
def own_template_gguf(tmp_path_factory) -> Path:
    from deskmind.core.runtimes.llamacpp import default_model_path

    out = tmp_path_factory.mktemp("gguf") / "notes-helper.gguf"
    subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", "--force",
                    "--chat-template", TEMPLATE, str(default_model_path()), str(out)],
                   check=True, capture_output=True, timeout=300)
    return out


def test_the_built_in_provider_uses_the_chosen_model_and_its_own_template(own_template_gguf,
                                                                          deskmind_home):
    from deskmind.core.app import Core
    from deskmind.core.ask.session import make_hub
    from deskmind.core.models import set_chosen_model
    from deskmind.core.routing.config import parse_routing
    from deskmind.core.runtimes.llamacpp import DEFAULT_MODEL, default_model_path

    req = lambda model: ChatRequest(model, [Message("user", "Say hello.")],  # noqa: E731
                                    max_tokens=2, temperature=0)

    async def prompt_tokens(core, model: str) -> tuple[list[str], int]:
        async with make_hub(core, parse_routing(""), targets=()) as hub:
            inv = await hub.inventory()
            rt = await hub.runtime("embedded")
            done = [ev async for ev in rt.chat(req(model)) if ev.kind == "done"][0]
            return inv.providers["embedded"].models, done.usage.prompt_tokens

    with Core() as core:
        models, bundled_n = asyncio.run(prompt_tokens(core, "auto"))
        assert models == [DEFAULT_MODEL]  # nothing chosen yet: the bundled default answers
        set_chosen_model(core.paths, "general", own_template_gguf)
        models, chosen_n = asyncio.run(prompt_tokens(core, "auto"))
        assert models == ["notes-helper", DEFAULT_MODEL]  # the choice answers "auto"
        assert set(core.engines.loads) == {default_model_path().resolve(), own_template_gguf.resolve()}
        # the same question costs the chosen file's preamble: its own template was rendered
        assert chosen_n >= bundled_n + 150, (chosen_n, bundled_n)
        _, again = asyncio.run(prompt_tokens(core, DEFAULT_MODEL))  # still there by its name
        assert again == bundled_n


def test_a_choice_made_after_the_hub_was_built_applies_to_the_next_answer(own_template_gguf,
                                                                          deskmind_home):
    from deskmind.core.app import Core
    from deskmind.core.models import set_chosen_model
    from deskmind.core.runtimes.llamacpp import DEFAULT_MODEL, embedded_factory

    with Core() as core:
        provider = embedded_factory(core.engines, core.paths.config_dir)
        assert list(provider.models()) == [DEFAULT_MODEL]
        set_chosen_model(core.paths, "coder", own_template_gguf)
        assert list(provider.models()) == ["notes-helper", DEFAULT_MODEL]
        (core.paths.config_dir / "models.toml").write_text("[chosen]\nfast = 3\n", encoding="utf-8")
        # a broken models.toml costs the choice, not the answer
        assert list(provider.models()) == [DEFAULT_MODEL]


def test_a_replaced_model_leaves_memory_at_once_and_the_chosen_one_is_preloaded(own_template_gguf,
                                                                               deskmind_home,
                                                                               tmp_path):
    import shutil

    from deskmind.core.app import Core
    from deskmind.core.models import set_chosen_model
    from deskmind.core.runtimes.llamacpp import embedded_factory, preload_embedded

    other = tmp_path / "other-helper.gguf"
    shutil.copyfile(own_template_gguf, other)
    with Core() as core:
        assert core.engines.keep_alive > 0  # without the replacement it would stay for minutes
        set_chosen_model(core.paths, "general", own_template_gguf)
        preload_embedded(core.engines, core.paths.config_dir)
        assert core.engines.loaded() == [own_template_gguf.resolve()]
        provider = embedded_factory(core.engines, core.paths.config_dir)
        set_chosen_model(core.paths, "general", other)
        assert list(provider.models())[0] == "other-helper"
        assert core.engines.loaded() == []
        preload_embedded(core.engines, core.paths.config_dir)
        assert core.engines.loaded() == [other.resolve()] and core.engines.loads[other.resolve()] == 1
