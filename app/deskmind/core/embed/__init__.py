"""Embedders: text in, L2-normalised float32 vectors out."""

from deskmind.core.embed.base import Embedder, EmbedderSpec
from deskmind.core.embed.factory import create_embedder

__all__ = ["Embedder", "EmbedderSpec", "create_embedder"]
