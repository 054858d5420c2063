"""The memory database: sources, extracted text, chunks, full-text and vector indexes."""

from deskmind.core.memory.models import ForgetReceipt, Hit, NewChunk, Source, SourceDraft
from deskmind.core.memory.store import MemoryStore

__all__ = ["ForgetReceipt", "Hit", "MemoryStore", "NewChunk", "Source", "SourceDraft"]
