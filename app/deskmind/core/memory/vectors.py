"""Vector indexes: one per embedding model, rebuilt from the chunks whenever needed.

Each index has two tables, named after its id:

``vectors_<id>``
    ``chunk_id INTEGER PRIMARY KEY, embedding BLOB`` -- float32 vectors, L2-normalised. Point
    look-ups by chunk id are B-tree fast, which the re-scoring step needs.
``vecbits_<id>``
    a sqlite-vec ``vec0`` table with a ``bit[dim]`` column: the sign of every dimension
    (``vec_quantize_binary``). 48 bytes a chunk for 384 dimensions.

Search (see :class:`VectorSearcher`) is exact over the floats for small corpora and, above
``exact_limit`` chunks, takes the Hamming-nearest candidates from the bit vectors (held in
memory, see :mod:`deskmind.core.memory.vector_cache`) and re-scores them with the floats.
Chunks are immutable: a chunk id's vector in an index is written once (changed text makes a
new chunk with a new id), which is what lets the in-memory copy refresh incrementally.
Triggers on ``chunks`` delete a chunk's vectors with the chunk, so forgetting a source never
leaves vectors behind.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from deskmind.core.memory.vector_cache import BitCache, FloatCache, LayoutUnknown, Vec0Storage

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
    create_storage(conn, idx)
    return idx


def create_storage(conn: Any, idx: VectorIndex) -> None:
    """The tables and trigger of an index whose ``vector_indexes`` row exists (a copied
    memory brings its rows with their ids). Call inside a write transaction."""
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


def pack_bits(vec: np.ndarray) -> np.ndarray:
    """The sign bits of a vector packed as sqlite-vec's ``vec_quantize_binary`` packs them:
    bit ``i`` is set when component ``i`` is > 0, least significant bit first in each byte."""
    return np.packbits(np.asarray(vec).reshape(-1) > 0, bitorder="little")


def to_blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def vectors_to_store(idx: VectorIndex, chunk_ids: Sequence[int], matrix: np.ndarray) -> bool:
    """Whether there are vectors to store: one per chunk id, of the index's size (else
    ValueError). Both backends check what they are given this way."""
    if len(chunk_ids) != len(matrix):
        raise ValueError("one vector per chunk id")
    if len(chunk_ids) == 0:
        return False
    if matrix.shape[1] != idx.dim:
        raise ValueError(f"index {idx.id} holds {idx.dim}-d vectors, got {matrix.shape[1]}-d")
    return True


def insert_vectors(conn: Any, idx: VectorIndex, chunk_ids: Sequence[int], matrix: np.ndarray) -> None:
    """Store one vector per chunk id (replacing any). Call inside a write transaction."""
    if not vectors_to_store(idx, chunk_ids, matrix):
        return
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


class VectorSearcher:
    """Nearest chunks to a query vector. Safe to call from several reader threads.

    Holds one in-memory copy of the active index (see :mod:`vector_cache`): every float
    vector while the index has at most ``exact_limit`` of them (exact search), only the bit
    vectors beyond that (Hamming prefilter of ``candidates`` chunks, then exact re-scoring of
    those from the float table). The copy follows the database: it is refreshed whenever
    another connection has committed since this connection last looked.
    """

    def __init__(self, exact_limit: int = 20_000, candidates: int = 400,
                 prefilter_share: float = 0.01, rerank: bool = True) -> None:
        self.exact_limit = exact_limit
        self.candidates = candidates
        # Hamming keeps this share of the index (at least 4 x candidates) for the asymmetric
        # re-ranking, which picks the ``candidates`` whose floats are then read and scored.
        self.prefilter_share = prefilter_share
        self.rerank = rerank
        self._cache_obj: FloatCache | BitCache | None = None
        self._storage: Vec0Storage | None = None
        self._seen: dict[int, tuple[Any, int, object]] = {}  # id(conn) -> (conn, data_version, cache)
        self._lock = threading.Lock()

    def cache_info(self) -> dict[str, Any]:
        """What the in-memory copy holds (for ``deskmind stats`` and the benchmarks)."""
        with self._lock:
            c = self._cache_obj
            if c is None:
                return {"kind": None, "vectors": 0, "bytes": 0}
            n = c.live if isinstance(c, BitCache) else c.n
            return {"kind": c.kind, "index_id": c.idx.id, "vectors": n, "bytes": c.nbytes()}

    def _live(self, conn: Any, idx: VectorIndex) -> int:
        if self._storage is not None:
            return self._storage.count(conn)
        return count_vectors(conn, idx)

    def _current(self, conn: Any, idx: VectorIndex) -> FloatCache | BitCache:
        """The up-to-date copy of ``idx``. Call with the lock held."""
        cache = self._cache_obj
        if cache is not None and cache.idx.id != idx.id:
            cache = None  # another index became active: drop the old copy
        dv = conn.execute("PRAGMA data_version").fetchone()[0]
        seen = self._seen.get(id(conn))
        if cache is not None and seen is not None and seen[0] is conn and seen[1] == dv \
                and seen[2] is cache:
            return cache  # nobody committed since this connection last refreshed it
        own_txn = not conn.in_transaction
        if own_txn:
            conn.execute("BEGIN")  # one snapshot for the whole refresh
        try:
            if cache is None:
                self._seen.clear()
                try:
                    self._storage = Vec0Storage(conn, idx.bits_table, (idx.dim + 7) // 8)
                except LayoutUnknown as exc:
                    log.warning("reading bit vectors the slow way: %s", exc)
                    self._storage = None
                live = self._live(conn, idx)
                cache = FloatCache(idx) if live <= self.exact_limit else BitCache(idx, self._storage)
            if isinstance(cache, FloatCache):
                cache.refresh(conn, self._live(conn, idx))
                if cache.n > self.exact_limit * 1.5:
                    cache = BitCache(idx, self._storage)
            if isinstance(cache, BitCache):
                try:
                    cache.refresh(conn)
                except LayoutUnknown as exc:
                    log.warning("reading bit vectors the slow way: %s", exc)
                    self._storage = None
                    cache = BitCache(idx, None)
                    cache.refresh(conn)
        finally:
            if own_txn:
                conn.execute("COMMIT")
        self._cache_obj = cache
        self._seen[id(conn)] = (conn, dv, cache)
        return cache

    def warm(self, conn: Any, idx: VectorIndex) -> None:
        """Load the in-memory copy now (it is otherwise loaded by the first search, which then
        pays for reading the vectors, from disk when they are not in the OS cache). Blocking:
        call from a worker thread at start-up."""
        with self._lock:
            self._current(conn, idx)

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
            return _top(ids, dot(mat, q), k)
        with self._lock:
            cache = self._current(conn, idx)
            if isinstance(cache, FloatCache):
                return _top(cache.ids, dot(cache.floats, q), k)
            if cache.live == 0:
                return []
            c = max(self.candidates, k * 4)
            if self.rerank:
                wide = max(4 * c, int(cache.live * self.prefilter_share))
                slots = cache.rescore(q, cache.nearest_slots(pack_bits(q), wide), c)
            else:
                slots = cache.nearest_slots(pack_bits(q), c)
            cand = cache.ids[slots]
        ids, mat = fetch_floats(conn, idx, cand.tolist())
        return _top(ids, dot(mat, q), k)

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
            best = sorted(best + _top(ids, dot(mat, q), k), key=lambda t: -t[1])[:k]
            last = ids[-1]


def dot(mat: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``mat @ q`` without BLAS threads: a matrix-vector product is memory-bound, and BLAS
    worker threads on a busy 2-core machine made it ~8x slower (66 ms against 8 ms at 20k)."""
    return np.einsum("ij,j->i", mat, q)


def _top(ids: Sequence[int] | np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    if len(scores) == 0:
        return []
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in order]
