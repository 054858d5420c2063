"""Model runtimes: Ollama, OpenAI-compatible servers, Anthropic, embedded llama.cpp."""

from deskmind.core.runtimes.builtin import register_builtin_kinds
from deskmind.core.runtimes.embeddings import register_runtime_embedders
from deskmind.core.runtimes.kinds import RUNTIME_KINDS

# The built-in kinds and runtime embedders join their registries as soon as runtimes load.
register_builtin_kinds(RUNTIME_KINDS)
register_runtime_embedders()
