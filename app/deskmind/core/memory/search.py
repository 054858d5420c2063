"""Hybrid search: FTS5 (BM25) and vector KNN fused with reciprocal rank fusion.

The FTS side keeps only the content words of a question: OR-ing every word of a natural
language question (stopwords included) makes FTS5 walk most of the corpus.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from deskmind.core.embed.base import Embedder
from deskmind.core.memory import fts_budget, vectors
from deskmind.core.memory.models import Hit

if TYPE_CHECKING:
    from deskmind.core.memory.api import Searcher
    from deskmind.core.memory.store import MemoryStore

log = logging.getLogger(__name__)

RRF_K = 60
MAX_FTS_TERMS = 16
# Filters that leave fewer chunks than this are scored exactly over just those chunks.
EXACT_FILTER_LIMIT = 20_000

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each few for from further had hadn't has hasn't have
    haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
    i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
    myself no nor not of off on once only or other ought our ours ourselves out over own same
    shan't she she'd she'll she's should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've this
    those through to too under until up very was wasn't we we'd we'll we're we've were weren't
    what what's when when's where where's which while who who's whom why why's will with won't
    would wouldn't you you'd you'll you're you've your yours yourself yourselves tell show
    find give please know get got also just like want need""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry its meaning, lower-cased, in order: no stopwords, no
    single letters (single digits stay: "plan 6" is not "plan 16")."""
    return [w for w in (w.lower() for w in _WORD.findall(text))
            if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression of the content words of ``text`` OR-ed, or None if none."""
    words = [w.lower() for w in _WORD.findall(text)]
    content = content_words(text)
    if not content:
        content = [w for w in words if len(w) > 1][:4]
    seen: list[str] = []
    for w in content:
        if w not in seen:
            seen.append(w)
    if not seen:
        return None
    return " OR ".join(f'"{w}"' for w in seen[:MAX_FTS_TERMS])


@dataclass
class SearchFilters:
    kinds: Sequence[str] | None = None
    source_ids: Sequence[int] | None = None
    privacy: Sequence[str] | None = None
    since: float | None = None
    until: float | None = None
    collection: str | None = None
    exclude_kinds: Sequence[str] | None = None

    def is_empty(self) -> bool:
        return not (self.kinds or self.source_ids or self.privacy or self.since is not None
                    or self.until is not None or self.collection or self.exclude_kinds)

    def sql(self, alias: str = "s") -> tuple[str, list[Any]]:
        where, args = [], []
        if self.kinds:
            where.append(f"{alias}.kind IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(list(self.kinds)))
        if self.source_ids:
            where.append(f"{alias}.id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps([int(i) for i in self.source_ids]))
        if self.privacy:
            where.append(f"{alias}.privacy IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(list(self.privacy)))
        if self.since is not None:
            where.append(f"coalesce({alias}.mtime, {alias}.created_at) >= ?")
            args.append(self.since)
        if self.until is not None:
            where.append(f"coalesce({alias}.mtime, {alias}.created_at) < ?")
            args.append(self.until)
        if self.collection:
            where.append(f"{alias}.collection = ?")
            args.append(self.collection)
        if self.exclude_kinds:
            where.append(f"{alias}.kind NOT IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(list(self.exclude_kinds)))
        return (" AND ".join(where) if where else "1"), args


# Saved answers: indexed so they can be found on purpose, but not sources. Left out of a search
# unless asked for, so a question's hits are the notes and files an answer would cite.
CONVERSATION_KINDS = ("conversation",)


def conversations_left_out(kinds: Sequence[str] | None, include: bool) -> tuple[str, ...]:
    """The kinds a search leaves out: saved conversations, unless included or asked for by kind."""
    if include or (kinds and any(k in CONVERSATION_KINDS for k in kinds)):
        return ()
    return CONVERSATION_KINDS


def search_keeping(searcher: "Searcher", query: str, limit: int, filters: SearchFilters,
                   keep: Callable[[Hit], bool], strict: SearchFilters,
                   mode: str = "hybrid") -> list[Hit]:
    """The best ``limit`` hits that ``keep`` accepts. ``strict`` is ``filters`` plus what
    ``keep`` checks: a search with it scores every matching chunk from SQLite, while the
    unfiltered one is served from the vector cache, so search wider without it and drop what
    ``keep`` refuses; only when that leaves too few, search again with ``strict``."""
    wide = searcher.search(query, limit=limit * 3, filters=filters, mode=mode).hits
    kept = [h for h in wide if keep(h)]
    if len(kept) >= limit or len(wide) < limit * 3:
        return kept[:limit]
    hits = searcher.search(query, limit=limit * 3, filters=strict, mode=mode).hits
    return [h for h in hits if keep(h)][:limit]


def rrf_fuse(rankings: Sequence[Sequence[int]], limit: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked chunk id lists (best first): the best ``limit``
    ``(chunk id, score)``. Every backend's searcher fuses its full-text and vector rankings
    with this one function, so a question ranks the same way on each."""
    fused: dict[int, float] = {}
    for ranks in rankings:
        for rank, cid in enumerate(ranks):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(fused.items(), key=lambda kv: -kv[1])[:limit]


@dataclass
class SearchResult:
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)


class HybridSearcher:
    """Search the memory store. Blocking; call from a worker thread.

    ``embedder_for`` returns the embedder for a vector index's model id (built lazily and
    reused); without it search is full-text only.
    """

    def __init__(self, store: "MemoryStore", embedder_for: Callable[[str], Embedder] | None) -> None:
        self.store = store
        self.embedder_for = embedder_for

    def search(
        self, query: str, limit: int = 10, filters: SearchFilters | None = None,
        mode: str = "hybrid", query_vector: np.ndarray | None = None,
    ) -> SearchResult:
        conn = self.store.reader()
        # One read snapshot for the whole search: the active index, its tables, the FTS rows and
        # the chunks all as of one moment, so a re-embed swapping indexes (and dropping the old
        # tables) or a forget running meanwhile cannot pull a table out from under this search.
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            result = self._search(conn, query, limit, filters or SearchFilters(), mode, query_vector)
        except BaseException:
            if own and conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except Exception:  # keep the original error, not the clean-up's
                    log.debug("rollback after a failed search failed", exc_info=True)
            raise
        if own and conn.in_transaction:
            conn.execute("COMMIT")
        return result

    def _search(self, conn: Any, query: str, limit: int, filters: SearchFilters, mode: str,
                query_vector: np.ndarray | None) -> SearchResult:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        depth = max(limit * 3, 30)
        fts_ids: list[int] = []
        vec_ids: list[int] = []
        if mode in ("hybrid", "fts"):
            t = time.perf_counter()
            fts_ids = self._fts(conn, query, depth, filters)
            timings["fts"] = (time.perf_counter() - t) * 1000
        idx = vectors.active_index(conn) if mode in ("hybrid", "vector") else None
        if idx is not None and (self.embedder_for is not None or query_vector is not None):
            t = time.perf_counter()
            if query_vector is None:
                query_vector = self.embedder_for(idx.model_id).embed_query(query)
            timings["embed"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            vec_ids = self._vector(conn, idx, query_vector, depth, filters)
            timings["vector"] = (time.perf_counter() - t) * 1000
        best = rrf_fuse((fts_ids, vec_ids), limit)
        hits = self._hydrate(conn, best, fts_ids, vec_ids)
        timings["total"] = (time.perf_counter() - t0) * 1000
        return SearchResult(hits=hits, timings_ms=timings)

    def _fts(self, conn: Any, query: str, depth: int, filters: SearchFilters) -> list[int]:
        match = fts_query(query)
        if match is None:
            return []
        if filters.is_empty():
            # Rank only as many matches as a budget allows (common words dropped first).
            expr, low = fts_budget.plan(conn, match)
            rows = conn.execute(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid >= ? "
                "ORDER BY rank LIMIT ?",
                (expr, low or 0, depth),
            ).fetchall()
        else:
            where, args = filters.sql("s")
            rows = conn.execute(
                "SELECT f.rowid FROM chunks_fts f JOIN chunks c ON c.id = f.rowid "
                f"JOIN sources s ON s.id = c.source_id WHERE chunks_fts MATCH ? AND {where} "
                "ORDER BY f.rank LIMIT ?",
                (match, *args, depth),
            ).fetchall()
        return [r[0] for r in rows]

    def _vector(self, conn: Any, idx: vectors.VectorIndex, q: np.ndarray, depth: int,
                filters: SearchFilters) -> list[int]:
        searcher = self.store.vector_searcher
        if filters.is_empty():
            return [cid for cid, _ in searcher.search(conn, idx, q, depth)]
        where, args = filters.sql("s")
        allowed = [r[0] for r in conn.execute(
            f"SELECT c.id FROM chunks c JOIN sources s ON s.id = c.source_id WHERE {where} "
            f"LIMIT {EXACT_FILTER_LIMIT + 1}", args).fetchall()]
        if len(allowed) <= EXACT_FILTER_LIMIT:
            return [cid for cid, _ in searcher.search(conn, idx, q, depth, allowed=allowed)]
        # A broad filter: search widely, then keep what passes.
        wide = searcher.search(conn, idx, q, depth * 10)
        ok = {r[0] for r in conn.execute(
            f"SELECT c.id FROM chunks c JOIN sources s ON s.id = c.source_id WHERE {where} "
            "AND c.id IN (SELECT value FROM json_each(?))",
            (*args, json.dumps([c for c, _ in wide]))).fetchall()}
        return [cid for cid, _ in wide if cid in ok][:depth]

    def _hydrate(self, conn: Any, best: list[tuple[int, float]], fts_ids: list[int],
                 vec_ids: list[int]) -> list[Hit]:
        if not best:
            return []
        rows = conn.execute(
            "SELECT c.id, c.source_id, s.uri, s.title, s.kind, c.locator, c.text, s.privacy "
            "FROM chunks c JOIN sources s ON s.id = c.source_id "
            "WHERE c.id IN (SELECT value FROM json_each(?))",
            (json.dumps([cid for cid, _ in best]),),
        ).fetchall()
        by_id = {r[0]: r for r in rows}
        fts_rank = {cid: i + 1 for i, cid in enumerate(fts_ids)}
        vec_rank = {cid: i + 1 for i, cid in enumerate(vec_ids)}
        hits = []
        for cid, score in best:
            r = by_id.get(cid)
            if r is None:  # deleted between the two reads
                continue
            hits.append(Hit(
                chunk_id=r[0], source_id=r[1], source=r[2], title=r[3], kind=r[4],
                locator=json.loads(r[5] or "{}"), score=round(score, 6), text=r[6],
                privacy=r[7], fts_rank=fts_rank.get(cid), vector_rank=vec_rank.get(cid),
            ))
        return hits
