"""Build a complete new vector index beside the active one, then swap it in atomically.

Search keeps using the active index during the build. The build walks chunks in id order
with a watermark stored in the index row, so a killed rebuild resumes where it stopped, and
chunks added during the build (ids above the watermark) are embedded before the swap.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from deskmind.core.embed.base import Embedder
from deskmind.core.memory import vectors
from deskmind.core.memory.store import MemoryStore

log = logging.getLogger(__name__)

BATCH = 64


@dataclass
class ReembedProgress:
    done: int
    total: int
    model_id: str


@dataclass
class ReembedResult:
    model_id: str
    dim: int
    index_id: int
    embedded: int
    replaced_model: str | None
    seconds: float


class SqliteIndexBuilder:
    """The steps of a rebuild on the SQLite store: reads on this thread's connection, writes on
    the store's single writer thread (so nothing else writes during the swap)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def start(self, model_id: str, dim: int) -> vectors.VectorIndex:
        def _start(conn: Any) -> vectors.VectorIndex:
            for b in vectors.building_indexes(conn):
                if b.model_id == model_id and b.dim == dim:
                    return b
                vectors.drop_index(conn, b)  # an abandoned build for another model
            return vectors.create_index(conn, model_id, dim, "building")

        return self.store.writer.transaction(_start)

    def progress(self, idx: vectors.VectorIndex) -> tuple[int, int]:
        """(chunks in all, chunks at or below the watermark)."""
        reader = self.store.reader()
        total = reader.execute("SELECT count(*) FROM chunks").fetchone()[0]
        done = reader.execute("SELECT count(*) FROM chunks WHERE id <= ?", (idx.watermark,)).fetchone()[0]
        return total, done

    def pending(self, after: int, limit: int) -> list[tuple[int, str]]:
        return _pending(self.store.reader(), after, limit)

    def store_batch(self, idx: vectors.VectorIndex, rows: list[tuple[int, str]], mat: Any) -> None:
        self.store.writer.transaction(lambda conn: _store(conn, idx, rows, mat))

    def swap(self, idx: vectors.VectorIndex, embed: Callable[[list[str]], Any]) -> tuple[vectors.VectorIndex | None, int]:
        def _swap(conn: Any) -> tuple[vectors.VectorIndex | None, int]:
            # On the writer thread no other write can slip in: embed the last stragglers, then swap.
            wm = conn.execute("SELECT watermark FROM vector_indexes WHERE id = ?", (idx.id,)).fetchone()[0]
            n = 0
            while True:
                rows = _pending(conn, wm, BATCH)
                if not rows:
                    break
                _store(conn, idx, rows, embed([r[1] for r in rows]))
                wm = rows[-1][0]
                n += len(rows)
            return vectors.activate(conn, idx), n

        return self.store.writer.transaction(_swap)


def _pending(conn: Any, after: int, limit: int) -> list[tuple[int, str]]:
    return conn.execute(
        "SELECT id, text FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
    ).fetchall()


def _store(conn: Any, idx: vectors.VectorIndex, rows: list[tuple[int, str]], mat: Any) -> None:
    vectors.insert_vectors(conn, idx, [r[0] for r in rows], mat)
    conn.execute("UPDATE vector_indexes SET watermark = ? WHERE id = ?", (rows[-1][0], idx.id))


def index_builder(store: Any) -> Any:
    """The rebuild steps for this store's backend."""
    if getattr(store, "backend", "sqlite") == "postgres":
        from deskmind.core.memory.pg.reembed import PgIndexBuilder

        return PgIndexBuilder(store)
    return SqliteIndexBuilder(store)


def reembed(
    store: Any,
    embedder: Embedder,
    on_progress: Callable[[ReembedProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> ReembedResult | None:
    """Rebuild every vector with ``embedder`` and make that index active.

    Returns None when cancelled (the partial index stays, and the next run resumes it).
    """
    t0 = time.time()
    builder = index_builder(store)
    idx = builder.start(embedder.model_id, embedder.dim)
    total, done = builder.progress(idx)
    watermark = idx.watermark
    embedded = 0
    while True:
        if cancel is not None and cancel.is_set():
            return None
        rows = builder.pending(watermark, BATCH)
        if not rows:
            break
        mat = embedder.embed([r[1] for r in rows])
        builder.store_batch(idx, rows, mat)
        watermark = rows[-1][0]
        embedded += len(rows)
        done += len(rows)
        if on_progress:
            on_progress(ReembedProgress(done=done, total=max(total, done), model_id=idx.model_id))
    old, stragglers = builder.swap(idx, embedder.embed)
    embedded += stragglers
    log.info("vector index %d (%s) is now active", idx.id, idx.model_id)
    return ReembedResult(
        model_id=embedder.model_id, dim=embedder.dim, index_id=idx.id, embedded=embedded,
        replaced_model=old.model_id if old else None, seconds=time.time() - t0,
    )
