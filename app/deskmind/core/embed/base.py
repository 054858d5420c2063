"""The embedder interface and the registry of factories, by model id.

Every vector index records the model id and dimension of the embedder that made it; search
embeds the query with that same model. Runtimes (Ollama, OpenAI-compatible ``/v1/embeddings``)
plug in by registering a factory for their model-id prefix; the built-in ONNX models are
registered by :func:`deskmind.core.embed.factory.create_embedder`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)

# all-MiniLM-L6-v2 computing in int8 (derived from the packaged model: about twice the
# throughput) is the default; the same weights in fp32 keep their own id, so indexes made by
# either stay searchable with the model that made them.
DEFAULT_MODEL_ID = "minilm-l6-v2-int8"
FP32_MODEL_ID = "minilm-l6-v2"
INT8_MODEL_IDS = frozenset({DEFAULT_MODEL_ID})


@runtime_checkable
class Embedder(Protocol):
    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an ``(len(texts), dim)`` float32 matrix of unit vectors. Blocking: call it
        from a worker thread, never from the GUI thread."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One unit vector for a search query."""
        ...


@dataclass(frozen=True)
class EmbedderSpec:
    """What to build: a model id, plus options (paths, threads) for that kind of model."""

    model_id: str = DEFAULT_MODEL_ID
    options: dict = field(default_factory=dict)


Factory = Callable[[EmbedderSpec], Embedder]
_FACTORIES: dict[str, Factory] = {}


def register(prefix: str, factory: Factory) -> None:
    """Register a factory for model ids equal to ``prefix`` or starting with ``prefix + ':'``."""
    _FACTORIES[prefix] = factory


def build_embedder(spec: EmbedderSpec) -> Embedder:
    """The embedder from the factory registered for ``spec.model_id`` (or its prefix)."""
    prefix = spec.model_id.split(":", 1)[0]
    factory = _FACTORIES.get(spec.model_id) or _FACTORIES.get(prefix)
    if factory is None:
        known = ", ".join(sorted(_FACTORIES)) or "none"
        raise UserInputError(f"unknown embedding model '{spec.model_id}' (known: {known})")
    return factory(spec)
