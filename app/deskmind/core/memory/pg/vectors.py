"""Vector indexes on PostgreSQL: one pgvector table per index, searched through HNSW.

``vectors_<id>`` holds ``chunk_id`` (a foreign key to ``chunks`` with ON DELETE CASCADE, so
forgetting a source never leaves vectors behind) and the float32 ``embedding`` as
``vector(dim)``. The HNSW index is built on the embedding cast to ``halfvec``: half the index
size and build work for the same neighbours (see docs/storage.md for the figures), while the
table keeps full floats for exact re-scoring, copying and reuse. The index records
(``vector_indexes``) and their lifecycle are those of the SQLite backend.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

import numpy as np
import psycopg

from deskmind.core.memory.vectors import VectorIndex, vectors_to_store

_COLS = "id, model_id, dim, status, watermark"
# HNSW parameters: pgvector's defaults (m=16, ef_construction=64). ef_search is set on every
# connection (so an unfiltered search needs no transaction to set it) and raised per query
# when a search asks for more neighbours than it. 200 keeps recall@10 against an exact scan
# where the SQLite backend's is (0.997 at 100k benchmark chunks; 100 gave 0.966, 40 0.881:
# bench/search.py --backend postgres prints it).
EF_SEARCH = 200
SESSION_SETTINGS = {"hnsw.ef_search": str(EF_SEARCH)}
HALFVEC_MAX_DIM = 4000


def _row(row: Sequence[Any]) -> VectorIndex:
    return VectorIndex(id=row[0], model_id=row[1], dim=row[2], status=row[3], watermark=row[4])


def active_index(tx: Any) -> VectorIndex | None:
    row = tx.execute(f"SELECT {_COLS} FROM vector_indexes WHERE status = 'active'").fetchone()
    return _row(row) if row else None


def building_indexes(tx: Any) -> list[VectorIndex]:
    return [_row(r) for r in tx.execute(
        f"SELECT {_COLS} FROM vector_indexes WHERE status = 'building' ORDER BY id").fetchall()]


def get_index(tx: Any, index_id: int) -> VectorIndex | None:
    row = tx.execute(f"SELECT {_COLS} FROM vector_indexes WHERE id = ?", (index_id,)).fetchone()
    return _row(row) if row else None


def search_cast(idx: VectorIndex) -> str:
    """The type the HNSW index of ``idx`` is built on; queries must order by the same cast."""
    return f"halfvec({idx.dim})" if idx.dim <= HALFVEC_MAX_DIM else f"vector({idx.dim})"


def _opclass(idx: VectorIndex) -> str:
    return "halfvec_cosine_ops" if idx.dim <= HALFVEC_MAX_DIM else "vector_cosine_ops"


def create_index(tx: Any, model_id: str, dim: int, status: str) -> VectorIndex:
    """Create an index record, its table and HNSW index. Call inside a write transaction."""
    now = time.time()
    row = tx.execute(
        "INSERT INTO vector_indexes(model_id, dim, status, created_at, activated_at) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (model_id, int(dim), status, now, now if status == "active" else None)).fetchone()
    idx = VectorIndex(id=row[0], model_id=model_id, dim=int(dim), status=status)
    create_table(tx, idx)
    create_hnsw(tx, idx)
    return idx


def create_table(tx: Any, idx: VectorIndex) -> None:
    """The table of an index whose ``vector_indexes`` row exists, without its HNSW index (a
    bulk load builds that once at the end: :func:`create_hnsw`)."""
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {idx.float_table} (chunk_id BIGINT PRIMARY KEY "
        f"REFERENCES chunks(id) ON DELETE CASCADE, embedding vector({idx.dim}) NOT NULL)")


def create_hnsw(tx: Any, idx: VectorIndex) -> None:
    tx.execute(
        f"CREATE INDEX IF NOT EXISTS {idx.float_table}_hnsw ON {idx.float_table} USING hnsw "
        f"((embedding::{search_cast(idx)}) {_opclass(idx)})")


def drop_index(tx: Any, idx: VectorIndex) -> None:
    # Waits for every transaction that pinned the table (searches, writes) to end.
    tx.execute(f"DROP TABLE IF EXISTS {idx.float_table}")
    tx.execute("DELETE FROM vector_indexes WHERE id = ?", (idx.id,))


def pin(tx: Any, idx: VectorIndex, mode: str = "ACCESS SHARE") -> bool:
    """Lock the table of ``idx`` for the rest of this transaction, so a re-embed's swap cannot
    drop it mid-use; False when it is already gone. (PostgreSQL reads tables by name from the
    live catalog, not from the transaction's snapshot: an index read from the snapshot may name
    a table dropped since.)"""
    try:
        with tx.conn.transaction():  # a savepoint: the failure must not end the transaction
            tx.execute(f"LOCK TABLE {idx.float_table} IN {mode} MODE")
        return True
    except psycopg.errors.UndefinedTable:
        return False


def activate(tx: Any, new: VectorIndex) -> VectorIndex | None:
    """Make ``new`` the active index and drop the previous one, in the caller's transaction."""
    old = active_index(tx)
    if old is not None and old.id != new.id:
        drop_index(tx, old)
    tx.execute("UPDATE vector_indexes SET status = 'active', activated_at = ? WHERE id = ?",
               (time.time(), new.id))
    return old


def insert_vectors(tx: Any, idx: VectorIndex, chunk_ids: Sequence[int], matrix: np.ndarray) -> None:
    """Store one vector per chunk id (replacing any). Call inside a write transaction."""
    if not vectors_to_store(idx, chunk_ids, matrix):
        return
    tx.executemany(
        f"INSERT INTO {idx.float_table}(chunk_id, embedding) VALUES (?, ?) "
        "ON CONFLICT (chunk_id) DO UPDATE SET embedding = excluded.embedding",
        [(int(c), np.asarray(v, dtype=np.float32)) for c, v in zip(chunk_ids, matrix)])


def copy_vectors(tx: Any, idx: VectorIndex, pairs: Iterable[tuple[int, int]]) -> int:
    """Copy vectors from old chunk ids to new ones (same text, same model). Returns count."""
    pairs = list(pairs)
    if not pairs:
        return 0
    cur = tx.execute(
        f"INSERT INTO {idx.float_table}(chunk_id, embedding) "
        f"SELECT p.new_id, v.embedding FROM unnest(?::bigint[], ?::bigint[]) AS p(new_id, old_id) "
        f"JOIN {idx.float_table} v ON v.chunk_id = p.old_id "
        "ON CONFLICT (chunk_id) DO UPDATE SET embedding = excluded.embedding",
        ([int(n) for n, _ in pairs], [int(o) for _, o in pairs]))
    return cur.rowcount


def count_vectors(tx: Any, idx: VectorIndex) -> int:
    return tx.execute(f"SELECT count(*) FROM {idx.float_table}").fetchone()[0]


def fetch_floats(tx: Any, idx: VectorIndex, chunk_ids: Sequence[int]) -> tuple[list[int], np.ndarray]:
    """The float vectors of the given chunks that still exist, in a matrix."""
    rows = tx.execute(
        f"SELECT chunk_id, embedding FROM {idx.float_table} WHERE chunk_id = ANY(?)",
        ([int(c) for c in chunk_ids],)).fetchall()
    if not rows:
        return [], np.zeros((0, idx.dim), dtype=np.float32)
    return [r[0] for r in rows], np.stack([as_array(r[1]) for r in rows])


def as_array(value: Any) -> np.ndarray:
    """A vector read from the database (pgvector's ``Vector``) as a float32 array."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)
