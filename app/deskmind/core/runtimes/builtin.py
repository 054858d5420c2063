"""The runtime kinds Deskmind ships with, registered into a :class:`RuntimeKinds`.

Each factory imports its runtime only when a provider of that kind is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deskmind.core.runtimes.discovery import probe_ollama, probe_openai
from deskmind.core.runtimes.kinds import RuntimeKind, RuntimeKinds

if TYPE_CHECKING:  # pragma: no cover
    from deskmind.core.runtimes.base import Runtime
    from deskmind.core.runtimes.http import Transport


OLLAMA = "ollama"
LLAMACPP = "llamacpp"  # the kind of the embedded model too


def _ollama(name: str, transport: "Transport") -> "Runtime":
    from deskmind.core.runtimes.ollama import OllamaRuntime

    return OllamaRuntime(name, transport)


def _openai(name: str, transport: "Transport") -> "Runtime":
    from deskmind.core.runtimes.openai_compat import OpenAICompatRuntime

    return OpenAICompatRuntime(name, transport)


def _anthropic(name: str, transport: "Transport") -> "Runtime":
    from deskmind.core.runtimes.anthropic import AnthropicRuntime

    return AnthropicRuntime(name, transport)


def register_builtin_kinds(kinds: RuntimeKinds) -> None:
    kinds.register(RuntimeKind(OLLAMA, "Ollama", build=_ollama, probe=probe_ollama))
    kinds.register(RuntimeKind("openai", "OpenAI-compatible server", build=_openai,
                               probe=probe_openai))
    kinds.register(RuntimeKind("anthropic", "Anthropic", build=_anthropic,
                               key_headers=lambda key: {"x-api-key": key}))
    # llama.cpp in-process (xllamacpp): a GGUF file of the person's, or the bundled model.
    kinds.register(RuntimeKind(LLAMACPP, "llama.cpp in-process"))
