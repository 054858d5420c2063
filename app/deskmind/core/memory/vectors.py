"""Vector indexes: one per embedding model, rebuilt from the chunks whenever needed.

Each index has two tables, named after its id:

``vectors_<id>``
    ``chunk_id INTEGER PRIMARY KEY, embedding BLOB`` -- float32 vectors, L2-normalised. Point
    look-ups by chunk id are B-tree fast, which the re-scoring step needs.
``vecbits_<id>``
    a sqlite-vec ``vec0`` table with a ``bit[dim]`` column: the sign of every dimension
    (``vec_quantize_binary``). 48 bytes a chunk for 384 dimensions.

Search (see :class:`VectorSearcher`) is exact over the floats for small corpora and, above
``exact_limit`` chunks, takes the Hamming-nearest candidates from the bit vectors and re-scores
them with the floats. Triggers on ``chunks`` delete a chunk's vectors with the chunk, so
forgetting a source never leaves vectors behind.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VectorIndex:
    id: int
    model_id: str
    dim: int
    status: str
    watermark: int = 0

    @property
    def float_table(self) -> str:
        return f"vectors_{self.id}"

    @property
    def bits_table(self) -> str:
        return f"vecbits_{self.id}"


def _row_to_index(row: Sequence[Any]) -> VectorIndex:
    return VectorIndex(id=row[0], model_id=row[1], dim=row[2], status=row[3], watermark=row[4])


_COLS = "id, model_id, dim, status, watermark"


def active_index(conn: Any) -> VectorIndex | None:
    row = conn.execute(
        f"SELECT {_COLS} FROM vector_indexes WHERE status = 'active'"
    ).fetchone()
    return _row_to_index(row) if row else None


def building_indexes(conn: Any) -> list[VectorIndex]:
    rows = conn.execute(
        f"SELECT {_COLS} FROM vector_indexes WHERE status = 'building' ORDER BY id"
    ).fetchall()
    return [_row_to_index(r) for r in rows]


def get_index(conn: Any, index_id: int) -> VectorIndex | None:
    row = conn.execute(f"SELECT {_COLS} FROM vector_indexes WHERE id = ?", (index_id,)).fetchone()
    return _row_to_index(row) if row else None


def create_index(conn: Any, model_id: str, dim: int, status: str) -> VectorIndex:
    """Create an index and its tables. Call inside a write transaction."""
    cur = conn.execute(
        "INSERT INTO vector_indexes(model_id, dim, status, created_at, activated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (model_id, int(dim), status, time.time(), time.time() if status == "active" else None),
    )
    idx = VectorIndex(id=cur.lastrowid, model_id=model_id, dim=int(dim), status=status)
    conn.execute(
        f"CREATE TABLE {idx.float_table} (chunk_id INTEGER PRIMARY KEY, embedding BLOB NOT NULL)"
    )
    conn.execute(f"CREATE VIRTUAL TABLE {idx.bits_table} USING vec0(embedding bit[{idx.dim}])")
    conn.execute(
        f"""
        CREATE TRIGGER {idx.float_table}_chunk_deleted AFTER DELETE ON chunks BEGIN
            DELETE FROM {idx.float_table} WHERE chunk_id = old.id;
            DELETE FROM {idx.bits_table} WHERE rowid = old.id;
        END
        """
    )
    return idx


def drop_index(conn: Any, idx: VectorIndex) -> None:
    """Remove an index and its tables. Call inside a write transaction."""
    conn.execute(f"DROP TRIGGER IF EXISTS {idx.float_table}_chunk_deleted")
    conn.execute(f"DROP TABLE IF EXISTS {idx.float_table}")
    conn.execute(f"DROP TABLE IF EXISTS {idx.bits_table}")
    conn.execute("DELETE FROM vector_indexes WHERE id = ?", (idx.id,))


def activate(conn: Any, new: VectorIndex) -> VectorIndex | None:
    """Make ``new`` the active index and drop the previous one, in the caller's transaction."""
    old = active_index(conn)
    if old is not None and old.id != new.id:
        drop_index(conn, old)
    conn.execute(
        "UPDATE vector_indexes SET status = 'active', activated_at = ? WHERE id = ?",
        (time.time(), new.id),
    )
    return old


def to_blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def insert_vectors(conn: Any, idx: VectorIndex, chunk_ids: Sequence[int], matrix: np.ndarray) -> None:
    """Store one vector per chunk id (replacing any). Call inside a write transaction."""
    if len(chunk_ids) != len(matrix):
        raise ValueError("one vector per chunk id")
    if len(chunk_ids) == 0:
        return
    if matrix.shape[1] != idx.dim:
        raise ValueError(f"index {idx.id} holds {idx.dim}-d vectors, got {matrix.shape[1]}-d")
    rows = [(int(cid), to_blob(v)) for cid, v in zip(chunk_ids, matrix)]
    conn.executemany(
        f"INSERT OR REPLACE INTO {idx.float_table}(chunk_id, embedding) VALUES (?, ?)", rows
    )
    # vec0 has no upsert: delete first so a re-insert of the same chunk cannot fail.
    conn.executemany(f"DELETE FROM {idx.bits_table} WHERE rowid = ?", [(r[0],) for r in rows])
    conn.executemany(
        f"INSERT INTO {idx.bits_table}(rowid, embedding) VALUES (?, vec_quantize_binary(?))", rows
    )


def copy_vectors(conn: Any, idx: VectorIndex, pairs: Iterable[tuple[int, int]]) -> int:
    """Copy vectors from old chunk ids to new ones (same text, same model). Returns count."""
    n = 0
    for new_id, old_id in pairs:
        row = conn.execute(
            f"SELECT embedding FROM {idx.float_table} WHERE chunk_id = ?", (old_id,)
        ).fetchone()
        if row is None:
            continue
        conn.execute(
            f"INSERT OR REPLACE INTO {idx.float_table}(chunk_id, embedding) VALUES (?, ?)",
            (new_id, row[0]),
        )
        conn.execute(f"DELETE FROM {idx.bits_table} WHERE rowid = ?", (new_id,))
        conn.execute(
            f"INSERT INTO {idx.bits_table}(rowid, embedding) VALUES (?, vec_quantize_binary(?))",
            (new_id, row[0]),
        )
        n += 1
    return n


def count_vectors(conn: Any, idx: VectorIndex) -> int:
    return conn.execute(f"SELECT count(*) FROM {idx.float_table}").fetchone()[0]


def fetch_floats(conn: Any, idx: VectorIndex, chunk_ids: Sequence[int]) -> tuple[list[int], np.ndarray]:
    """The float vectors of the given chunks that still exist, in a matrix."""
    rows = conn.execute(
        f"SELECT chunk_id, embedding FROM {idx.float_table} "
        "WHERE chunk_id IN (SELECT value FROM json_each(?))",
        (json.dumps([int(c) for c in chunk_ids]),),
    ).fetchall()
    if not rows:
        return [], np.zeros((0, idx.dim), dtype=np.float32)
    ids = [r[0] for r in rows]
    mat = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), idx.dim)
    return ids, mat


class _IndexCache:
    """An in-memory copy of one index's bit vectors (and floats, when small), kept current.

    New chunks always have larger ids (AUTOINCREMENT), so refreshing reads only rows past the
    highest id loaded. Deleted chunks stay in the cache until the next full reload; candidates
    are re-scored against the float table, where deleted chunks no longer exist, so they can
    never be returned.
    """

    def __init__(self, idx: VectorIndex, keep_floats: bool) -> None:
        self.idx = idx
        self.keep_floats = keep_floats
        self.ids = np.zeros(0, dtype=np.int64)
        self.bits = np.zeros((0, (idx.dim + 7) // 8), dtype=np.uint8)
        self.floats: np.ndarray | None = np.zeros((0, idx.dim), dtype=np.float32) if keep_floats else None
        self.max_id = 0
        self.live = 0

    def refresh(self, conn: Any) -> None:
        live, max_id = conn.execute(
            f"SELECT count(*), coalesce(max(chunk_id), 0) FROM {self.idx.float_table}"
        ).fetchone()
        if max_id < self.max_id or live < self.live * 0.9:
            self.__init__(self.idx, self.keep_floats)  # many deletions: reload from scratch
        if max_id > self.max_id:
            self._load_after(conn, self.max_id)
        self.live = live

    def _load_after(self, conn: Any, after: int) -> None:
        rows = conn.execute(
            f"SELECT rowid, embedding FROM {self.idx.bits_table} WHERE rowid > ? ORDER BY rowid",
            (after,),
        ).fetchall()
        if not rows:
            return
        nbytes = self.bits.shape[1]
        new_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        new_bits = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(-1, nbytes)
        self.ids = np.concatenate([self.ids, new_ids])
        self.bits = np.concatenate([self.bits, new_bits])
        if self.keep_floats:
            _, mat = fetch_floats_after(conn, self.idx, after, new_ids)
            self.floats = np.concatenate([self.floats, mat])
        self.max_id = int(new_ids[-1])


def fetch_floats_after(conn: Any, idx: VectorIndex, after: int, ids: np.ndarray) -> tuple[list[int], np.ndarray]:
    rows = conn.execute(
        f"SELECT chunk_id, embedding FROM {idx.float_table} WHERE chunk_id > ? AND chunk_id <= ? "
        "ORDER BY chunk_id",
        (after, int(ids[-1])),
    ).fetchall()
    got = {r[0]: r[1] for r in rows}
    zero = bytes(4 * idx.dim)
    # Align with the bit rows; a chunk deleted between the two reads gets a zero vector.
    blob = b"".join(got.get(int(i), zero) for i in ids)
    return list(map(int, ids)), np.frombuffer(blob, dtype="<f4").reshape(len(ids), idx.dim)


class VectorSearcher:
    """Nearest chunks to a query vector. Safe to call from several reader threads."""

    def __init__(self, exact_limit: int = 20_000, candidates: int = 400) -> None:
        self.exact_limit = exact_limit
        self.candidates = candidates
        self._caches: dict[int, _IndexCache] = {}
        self._lock = threading.Lock()

    def _cache(self, conn: Any, idx: VectorIndex) -> _IndexCache:
        with self._lock:
            cache = self._caches.get(idx.id)
            if cache is None:
                self._caches = {}  # another index became active: drop the old copy
                n = count_vectors(conn, idx)
                cache = _IndexCache(idx, keep_floats=n <= self.exact_limit)
                self._caches[idx.id] = cache
            cache.refresh(conn)
            if cache.keep_floats and cache.live > self.exact_limit * 1.5:
                cache = _IndexCache(idx, keep_floats=False)
                cache.refresh(conn)
                self._caches[idx.id] = cache
            return cache

    def search(
        self, conn: Any, idx: VectorIndex, query: np.ndarray, k: int,
        allowed: Sequence[int] | None = None,
    ) -> list[tuple[int, float]]:
        """Return ``(chunk_id, cosine_similarity)`` best first.

        ``allowed`` restricts the search to those chunk ids (filters); they are scored exactly.
        """
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if allowed is not None:
            ids, mat = fetch_floats(conn, idx, allowed)
            return _top(ids, mat @ q, k)
        cache = self._cache(conn, idx)
        if len(cache.ids) == 0:
            return []
        if cache.floats is not None:
            return _top(cache.ids, cache.floats @ q, k)
        qbits = np.packbits(q > 0, bitorder="little")
        dist = np.bitwise_count(np.bitwise_xor(cache.bits, qbits)).sum(axis=1, dtype=np.uint16)
        c = min(max(self.candidates, k * 4), len(dist))
        cand = cache.ids[np.argpartition(dist, c - 1)[:c]] if c < len(dist) else cache.ids
        ids, mat = fetch_floats(conn, idx, cand.tolist())
        return _top(ids, mat @ q, k)

    def exact(self, conn: Any, idx: VectorIndex, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Exact float search over the whole index, streamed in blocks (for recall checks)."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        best: list[tuple[int, float]] = []
        last = 0
        while True:
            rows = conn.execute(
                f"SELECT chunk_id, embedding FROM {idx.float_table} WHERE chunk_id > ? "
                "ORDER BY chunk_id LIMIT 50000",
                (last,),
            ).fetchall()
            if not rows:
                return best
            ids = [r[0] for r in rows]
            mat = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), idx.dim)
            best = sorted(best + _top(ids, mat @ q, k), key=lambda t: -t[1])[:k]
            last = ids[-1]


def _top(ids: Sequence[int] | np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    if len(scores) == 0:
        return []
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in order]
