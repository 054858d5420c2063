"""Model runtimes: Ollama, OpenAI-compatible servers, Anthropic, embedded llama.cpp."""

from deskmind.core.runtimes.embeddings import register_runtime_embedders

# Runtime embedders join the memory spine's registry as soon as runtimes are imported.
register_runtime_embedders()
