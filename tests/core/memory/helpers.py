"""Small helpers shared by the memory tests: wrappers around the real embedder, note drafts."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Sequence

import numpy as np

from deskmind.core.memory.models import NewChunk, SourceDraft


class WrappedEmbedder:
    """The real embedder under another (or the same) model id, counting its work.

    ``delay`` seconds are slept before each batch, so a test can watch work in flight.
    """

    def __init__(self, inner: Any, model_id: str | None = None, delay: float = 0.0) -> None:
        self.inner = inner
        self.model_id = model_id or inner.model_id
        self.dim = inner.dim
        self.delay = delay
        self.calls = 0
        self.texts = 0
        self.queries = 0
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.texts += len(texts)
        if self.delay:
            time.sleep(self.delay)
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            self.queries += 1
        return self.inner.embed_query(text)


def note(chunks: Sequence[str] | str, *, kind: str = "note", uri: str | None = None,
         title: str | None = None, privacy: str = "private", mtime: float | None = None,
         collection: str | None = None, parent_id: int | None = None) -> SourceDraft:
    """A Deskmind-made source whose chunks are the given texts."""
    if isinstance(chunks, str):
        chunks = [chunks]
    return SourceDraft(
        uri=uri or f"deskmind://{kind}/{uuid.uuid4()}", kind=kind, title=title or chunks[0][:40],
        privacy=privacy, mtime=mtime, collection=collection, parent_id=parent_id,
        text="\n\n".join(chunks), extractor="test",
        chunks=[NewChunk(text=t, locator={"para": i}) for i, t in enumerate(chunks)],
    )


def rows(conn: Any, sql: str, *args: Any) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sql, args).fetchall()]


def scalar(conn: Any, sql: str, *args: Any) -> Any:
    return conn.execute(sql, args).fetchone()[0]


def query(store: Any, sql: str, *args: Any) -> list[tuple]:
    """Rows of portable SQL on either backend (through the store's runner)."""
    return [tuple(r) for r in store.sql.query(sql, args)]


def count(store: Any, sql: str, *args: Any) -> Any:
    return store.sql.query_one(sql, args)[0]


def home_memory(home: Any) -> Any:
    """The memory a Deskmind process started with ``DESKMIND_HOME=home`` opens: DESKMIND_DB
    when set (``--memory-backend=postgres``, ``on_both_backends``), else the data folder's
    SQLite file. Use it as a context manager."""
    from pathlib import Path

    from deskmind.core.memory.backend import memory_location, open_memory

    return open_memory(memory_location(Path(home) / "data" / "memory.db"))


def sqlite_only(monkeypatch: Any) -> None:
    """For a test of the SQLite file itself (its header, its folder, its disk, its pages):
    the memory stays in the data folder's file even when the run puts every memory on
    PostgreSQL."""
    monkeypatch.delenv("DESKMIND_DB", raising=False)
