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


def _pending(conn: Any, after: int, limit: int) -> list[tuple[int, str]]:
    return conn.execute(
        "SELECT id, text FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
    ).fetchall()


def _store(conn: Any, idx: vectors.VectorIndex, rows: list[tuple[int, str]], mat: Any) -> None:
    vectors.insert_vectors(conn, idx, [r[0] for r in rows], mat)
    conn.execute("UPDATE vector_indexes SET watermark = ? WHERE id = ?", (rows[-1][0], idx.id))


def reembed(
    store: MemoryStore,
    embedder: Embedder,
    on_progress: Callable[[ReembedProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> ReembedResult | None:
    """Rebuild every vector with ``embedder`` and make that index active.

    Returns None when cancelled (the partial index stays, and the next run resumes it).
    """
    t0 = time.time()

    def _start(conn: Any) -> vectors.VectorIndex:
        for b in vectors.building_indexes(conn):
            if b.model_id == embedder.model_id and b.dim == embedder.dim:
                return b
            vectors.drop_index(conn, b)  # an abandoned build for another model
        return vectors.create_index(conn, embedder.model_id, embedder.dim, "building")

    idx = store.writer.transaction(_start)
    reader = store.reader()
    total = reader.execute("SELECT count(*) FROM chunks").fetchone()[0]
    done = reader.execute("SELECT count(*) FROM chunks WHERE id <= ?", (idx.watermark,)).fetchone()[0]
    watermark = idx.watermark
    embedded = 0
    while True:
        if cancel is not None and cancel.is_set():
            return None
        rows = _pending(reader, watermark, BATCH)
        if not rows:
            break
        mat = embedder.embed([r[1] for r in rows])
        store.writer.transaction(lambda conn, rows=rows, mat=mat: _store(conn, idx, rows, mat))
        watermark = rows[-1][0]
        embedded += len(rows)
        done += len(rows)
        if on_progress:
            on_progress(ReembedProgress(done=done, total=max(total, done), model_id=idx.model_id))

    def _swap(conn: Any) -> vectors.VectorIndex | None:
        # On the writer thread no other write can slip in: embed the last stragglers, then swap.
        nonlocal embedded
        wm = conn.execute("SELECT watermark FROM vector_indexes WHERE id = ?", (idx.id,)).fetchone()[0]
        while True:
            rows = _pending(conn, wm, BATCH)
            if not rows:
                break
            _store(conn, idx, rows, embedder.embed([r[1] for r in rows]))
            wm = rows[-1][0]
            embedded += len(rows)
        return vectors.activate(conn, idx)

    old = store.writer.transaction(_swap)
    log.info("vector index %d (%s) is now active", idx.id, idx.model_id)
    return ReembedResult(
        model_id=embedder.model_id, dim=embedder.dim, index_id=idx.id, embedded=embedded,
        replaced_model=old.model_id if old else None, seconds=time.time() - t0,
    )
