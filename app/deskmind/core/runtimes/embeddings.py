"""Runtime embeddings behind the memory spine's :class:`Embedder` interface.

Model ids: ``ollama:<model>`` (Ollama's /api/embed) and ``openai-compat:<model>`` (any
``/v1/embeddings``). Each model id gets its own vector index, as for every embedder. The
server URL comes from the spec's ``url`` option (default: the usual loopback port).

The Embedder interface is blocking (it runs on indexing worker threads), so this uses a small
synchronous httpx client rather than the hub's async one. Only machine-zone URLs are
accepted: memory text sent to embed must not leave the machine outside the ledgered path.
"""

from __future__ import annotations

import logging
from typing import Sequence

import httpx
import numpy as np

from deskmind.core.embed.base import EmbedderSpec, register
from deskmind.core.errors import ModelUnavailableError, UserInputError
from deskmind.core.routing.zones import derive_zone

log = logging.getLogger(__name__)

DEFAULT_URLS = {"ollama": "http://127.0.0.1:11434", "openai-compat": "http://127.0.0.1:1234"}
BATCH = 64


class RuntimeEmbedder:
    def __init__(self, model_id: str, url: str, client: httpx.Client | None = None) -> None:
        prefix, _, model = model_id.partition(":")
        if prefix not in DEFAULT_URLS or not model:
            raise UserInputError(f"'{model_id}' is not a runtime embedding model id "
                                 "(want ollama:<model> or openai-compat:<model>)")
        if derive_zone(url, []) != "machine":
            raise UserInputError(f"runtime embeddings only go to this machine; {url} is not loopback")
        self.model_id = model_id
        self.kind, self.model, self.url = prefix, model, url.rstrip("/")
        self.client = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=3.0), trust_env=False)
        self.dim = len(self._call(["dimension probe"])[0])

    @classmethod
    def from_spec(cls, spec: EmbedderSpec) -> "RuntimeEmbedder":
        prefix = spec.model_id.partition(":")[0]
        return cls(spec.model_id, spec.options.get("url") or DEFAULT_URLS.get(prefix, ""))

    def _call(self, texts: list[str]) -> list[list[float]]:
        try:
            if self.kind == "ollama":
                r = self.client.post(f"{self.url}/api/embed", json={"model": self.model, "input": texts})
                r.raise_for_status()
                return r.json()["embeddings"]
            r = self.client.post(f"{self.url}/v1/embeddings", json={"model": self.model, "input": texts})
            r.raise_for_status()
            return [d["embedding"] for d in sorted(r.json()["data"], key=lambda d: d.get("index", 0))]
        except httpx.HTTPStatusError as exc:
            raise ModelUnavailableError(f"{self.url} refused to embed with {self.model}: "
                                        f"HTTP {exc.response.status_code} {exc.response.text[:200]}") from None
        except httpx.HTTPError as exc:
            raise ModelUnavailableError(f"cannot reach {self.url} to embed with {self.model}: "
                                        f"{type(exc).__name__}") from None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), BATCH):
            out.extend(self._call(list(texts[i:i + BATCH])))
        arr = np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return arr / np.where(norms == 0, 1, norms)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def register_runtime_embedders() -> None:
    register("ollama", RuntimeEmbedder.from_spec)
    register("openai-compat", RuntimeEmbedder.from_spec)
