"""Builds an embedder from a model id, with the built-in models registered first.

The registry (``base.py``) knows no model; the built-in ONNX models join it here, and runtime
embedders (Ollama, OpenAI-compatible servers) when ``deskmind.core.runtimes`` is imported.
"""

from __future__ import annotations

from deskmind.core.embed.base import Embedder, EmbedderSpec, build_embedder


def create_embedder(spec: EmbedderSpec | str | None = None) -> Embedder:
    if spec is None:
        spec = EmbedderSpec()
    elif isinstance(spec, str):
        spec = EmbedderSpec(model_id=spec)
    from deskmind.core.embed import onnx_minilm   # numpy and the model code: only when needed

    onnx_minilm.register_embedders()
    return build_embedder(spec)
