"""Embedders: text in, L2-normalised float32 vectors out."""

from deskmind.core.embed.base import Embedder, EmbedderSpec, create_embedder

__all__ = ["Embedder", "EmbedderSpec", "create_embedder"]
