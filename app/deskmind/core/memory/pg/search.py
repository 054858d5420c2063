"""Hybrid search on PostgreSQL: ``tsvector`` full text and pgvector HNSW, fused with the same
reciprocal rank fusion, filters and provenance as the SQLite backend
(:mod:`deskmind.core.memory.search`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import psycopg

from deskmind.core.errors import StorageError
from deskmind.core.memory.pg import fts, vectors
from deskmind.core.memory.search import (
    EXACT_FILTER_LIMIT, HIT_COLUMNS, SearchFilters, SearchResult, make_hits, rrf_fuse,
)
from deskmind.core.memory.vectors import VectorIndex

if TYPE_CHECKING:
    from deskmind.core.memory.pg.store import PgMemoryStore

log = logging.getLogger(__name__)

SWAP_RETRIES = 3


class _IndexSwapped(Exception):
    """The active vector index changed between looking it up and reading it."""


class PgSearcher:
    """Search a :class:`PgMemoryStore`. Blocking; call from a worker thread.

    ``embedder_for`` returns the embedder for a vector index's model id; without it search is
    full-text only."""

    def __init__(self, store: "PgMemoryStore",
                 embedder_for: Callable[[str], Any] | None) -> None:
        self.store = store
        self.embedder_for = embedder_for
        self._index: VectorIndex | None = None

    def search(self, query: str, limit: int = 10, filters: SearchFilters | None = None,
               mode: str = "hybrid", query_vector: np.ndarray | None = None) -> SearchResult:
        filters = filters or SearchFilters()
        timings: dict[str, float] = {}
        vectors_by_model: dict[str, np.ndarray] = {}
        depth = max(limit * 3, 30)
        for _attempt in range(SWAP_RETRIES):
            idx = self._active_index() if mode in ("hybrid", "vector") else None
            q = query_vector
            if idx is not None and q is None and self.embedder_for is not None:
                # Embedded before any statement runs: CPU work should not hold a connection.
                if idx.model_id not in vectors_by_model:
                    t = time.perf_counter()
                    vectors_by_model[idx.model_id] = self.embedder_for(idx.model_id).embed_query(query)
                    timings["embed"] = (time.perf_counter() - t) * 1000
                q = vectors_by_model[idx.model_id]
            try:
                if filters.is_empty() and depth <= vectors.EF_SEARCH:
                    return self.store.sql.outside_transaction(
                        lambda tx: self._search_unfiltered(tx, query, limit, depth, mode, idx, q, timings))
                # One snapshot: the index, the full text, the vectors and the chunks as of one moment.
                return self.store.sql.read(
                    lambda tx: self._search(tx, query, limit, filters, mode, idx, q, timings))
            except _IndexSwapped:
                log.debug("a re-embed swapped the vector index during a search: searching again")
                self._index = None
        raise StorageError("the vector index kept changing during this search: try again")

    def _active_index(self) -> VectorIndex | None:
        """The active vector index, remembered between searches: a re-embed that swaps it
        drops the old table, which the next search notices (``_IndexSwapped``) and looks again.
        No index is never remembered (the first source stored creates one)."""
        idx = self._index
        if idx is None:
            idx = self._index = self.store.active_index()
        return idx

    def _search_unfiltered(self, tx: Any, query: str, limit: int, depth: int, mode: str,
                           idx: VectorIndex | None, q: np.ndarray | None,
                           timings: dict[str, float]) -> SearchResult:
        """No filter, the common case: one statement (one snapshot, one round trip, no
        transaction) computes both rankings and reads every chunk either one found; the
        shared fusion then picks the hits. Reading the few dozen candidates costs less than
        a second round trip, which on a busy machine waits for the server to get a core.
        The statement locks the vector table it reads for its duration, so a re-embed cannot
        drop it mid-read; a table dropped before it started is an ``UndefinedTable`` error:
        the index was swapped."""
        t0 = time.perf_counter()
        fts_part, vec_part, args = "'{}'::bigint[]", "'{}'::bigint[]", []
        if mode in ("hybrid", "fts"):
            ranked = fts.ranked_sql(tx, self.store.term_frequencies, query, depth, SearchFilters())
            if ranked is not None:
                fts_part = f"ARRAY({ranked[0]})"
                args += ranked[1]
        if idx is not None and q is not None:
            cast = vectors.search_cast(idx)
            vec_part = (f"ARRAY(SELECT chunk_id FROM {idx.float_table} "
                        f"ORDER BY embedding::{cast} <=> ?::{cast} LIMIT ?)")
            args += [np.asarray(q, dtype=np.float32).reshape(-1), depth]
        try:
            rows = tx.execute(
                f"WITH f AS MATERIALIZED (SELECT {fts_part} AS ids), "
                f"v AS MATERIALIZED (SELECT {vec_part} AS ids) "
                f"SELECT f.ids, v.ids, h.* FROM f CROSS JOIN v LEFT JOIN LATERAL ("
                f"SELECT {HIT_COLUMNS} FROM chunks c JOIN sources s ON s.id = c.source_id "
                "WHERE c.id = ANY(f.ids || v.ids)) h ON true", args).fetchall()
        except psycopg.errors.UndefinedTable as exc:
            raise _IndexSwapped() from exc
        fts_ids, vec_ids = list(rows[0][0]), list(rows[0][1])
        found = [r[2:] for r in rows if r[2] is not None]
        best = rrf_fuse((fts_ids, vec_ids), limit)
        hits = make_hits(best, found, fts_ids, vec_ids)
        timings["total"] = (time.perf_counter() - t0) * 1000 + timings.get("embed", 0.0)
        return SearchResult(hits=hits, timings_ms=timings)

    def _hits(self, tx: Any, fts_ids: list[int], vec_ids: list[int], limit: int,
              timings: dict[str, float], t0: float) -> SearchResult:
        best = rrf_fuse((fts_ids, vec_ids), limit)
        rows = tx.execute(
            f"SELECT {HIT_COLUMNS} FROM chunks c JOIN sources s ON s.id = c.source_id "
            "WHERE c.id = ANY(?)", ([cid for cid, _ in best],)).fetchall() if best else []
        hits = make_hits(best, rows, fts_ids, vec_ids)
        timings["total"] = (time.perf_counter() - t0) * 1000 + timings.get("embed", 0.0)
        return SearchResult(hits=hits, timings_ms=timings)

    def _search(self, tx: Any, query: str, limit: int, filters: SearchFilters, mode: str,
                idx: VectorIndex | None, q: np.ndarray | None,
                timings: dict[str, float]) -> SearchResult:
        t0 = time.perf_counter()
        depth = max(limit * 3, 30)
        fts_ids: list[int] = []
        vec_ids: list[int] = []
        if idx is not None and q is not None:
            current = vectors.active_index(tx)
            if current is None or current.id != idx.id or not vectors.pin(tx, idx):
                raise _IndexSwapped()
        if mode in ("hybrid", "fts"):
            t = time.perf_counter()
            fts_ids = self._fts(tx, query, depth, filters)
            timings["fts"] = (time.perf_counter() - t) * 1000
        if idx is not None and q is not None:
            t = time.perf_counter()
            vec_ids = self._vector(tx, idx, np.asarray(q, dtype=np.float32).reshape(-1),
                                   depth, filters)
            timings["vector"] = (time.perf_counter() - t) * 1000
        return self._hits(tx, fts_ids, vec_ids, limit, timings, t0)

    def _fts(self, tx: Any, query: str, depth: int, filters: SearchFilters) -> list[int]:
        return fts.ranked_chunks(tx, self.store.term_frequencies, query, depth, filters)

    def _vector(self, tx: Any, idx: VectorIndex, q: np.ndarray, depth: int,
                filters: SearchFilters) -> list[int]:
        cast = vectors.search_cast(idx)
        tx.execute(f"SET LOCAL hnsw.ef_search = {max(vectors.EF_SEARCH, depth)}")
        if filters.is_empty():
            rows = tx.execute(
                f"SELECT chunk_id FROM {idx.float_table} ORDER BY embedding::{cast} <=> ?::{cast} "
                "LIMIT ?", (q, depth)).fetchall()
            return [r[0] for r in rows]
        where, args = filters.sql("s")
        n = tx.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM chunks c JOIN sources s ON s.id = c.source_id "
            f"WHERE {where} LIMIT {EXACT_FILTER_LIMIT + 1}) AS f", args).fetchone()[0]
        if n <= EXACT_FILTER_LIMIT:
            # Few chunks pass: score each exactly on the full floats (the HNSW graph would have
            # to be walked far to find them).
            rows = tx.execute(
                f"SELECT v.chunk_id FROM {idx.float_table} v JOIN chunks c ON c.id = v.chunk_id "
                f"JOIN sources s ON s.id = c.source_id WHERE {where} "
                "ORDER BY v.embedding <=> ? LIMIT ?", (*args, q, depth)).fetchall()
            return [r[0] for r in rows]
        # A broad filter: walk the graph until enough neighbours pass it (pgvector >= 0.8).
        tx.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        rows = tx.execute(
            f"SELECT v.chunk_id FROM {idx.float_table} v JOIN chunks c ON c.id = v.chunk_id "
            f"JOIN sources s ON s.id = c.source_id WHERE {where} "
            f"ORDER BY v.embedding::{cast} <=> ?::{cast} LIMIT ?", (*args, q, depth)).fetchall()
        return [r[0] for r in rows]
