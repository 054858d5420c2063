"""FTS ranking stays within a budget: common words are dropped first, rare ones kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskmind.core.memory import fts_budget
from deskmind.core.memory.search import HybridSearcher, fts_query
from deskmind.core.memory.store import MemoryStore
from tests.core.memory.helpers import note


@pytest.fixture
def store(tmp_path: Path):
    s = MemoryStore(tmp_path / "memory.db")
    # 300 chunks all saying "report"; a few also say "invoice" or "reading".
    for i in range(30):
        texts = [f"weekly report number {i * 10 + j}" for j in range(10)]
        if i % 10 == 0:
            texts[3] = f"weekly report with the unpaid invoice {i}"
        if i == 7:
            texts[5] = "weekly report about reading glasses"
        s.put_source(note(texts, uri=f"deskmind://note/{i}"))
    yield s
    s.close()


def test_common_words_are_dropped_when_over_budget(store: MemoryStore) -> None:
    conn = store.reader()
    expr, low = fts_budget.plan(conn, fts_query("the report about the invoice"), budget=100)
    # Only chunks with the rare word match; BM25 still sees the common one.
    assert (expr, low) == ('("invoice") AND ("report" OR "invoice")', None)
    # Within budget nothing is dropped.
    expr, low = fts_budget.plan(conn, fts_query("report invoice"), budget=10_000)
    assert (expr, low) == ('"report" OR "invoice"', None)


def test_words_are_counted_by_their_stem(store: MemoryStore) -> None:
    conn = store.reader()
    # "reads" and "reading" both stem to "read": one chunk, so it is the rare word kept.
    expr, _ = fts_budget.plan(conn, fts_query("reads weekly"), budget=50)
    assert expr == '("reads") AND ("reads" OR "weekly")'


def test_a_query_of_only_common_words_ranks_the_newest_matches(store: MemoryStore) -> None:
    conn = store.reader()
    size = conn.execute("SELECT max(rowid) FROM chunks").fetchone()[0]
    expr, low = fts_budget.plan(conn, fts_query("weekly report"), budget=60)
    assert expr in ('("weekly") AND ("weekly" OR "report")', '("report") AND ("weekly" OR "report")')
    assert low == size - int(size * 60 / 300)
    rows = conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid >= ? "
                        "ORDER BY rank", (expr, low)).fetchall()
    assert len(rows) == size - low + 1  # the newest 61 chunks, every one of them a match


def test_search_still_finds_the_rare_word_among_common_ones(store: MemoryStore) -> None:
    hits = HybridSearcher(store, None).search("report on the unpaid invoice", limit=5, mode="fts").hits
    assert {h.text for h in hits[:3]} == {f"weekly report with the unpaid invoice {i}" for i in (0, 10, 20)}


def test_frequencies_follow_a_growing_memory(store: MemoryStore) -> None:
    conn = store.reader()
    assert fts_budget.plan(conn, fts_query("invoice weekly"), budget=10)[0].startswith('("invoice")')
    # "invoice" becomes the common word once 400 more chunks carry it (25% growth or more).
    for i in range(40):
        store.put_source(note([f"invoice batch {i} line {j}" for j in range(10)]))
    expr, low = fts_budget.plan(conn, fts_query("invoice weekly"), budget=10)
    assert expr.startswith('("weekly")')


def test_forgotten_low_rowids_do_not_widen_the_window(store: MemoryStore) -> None:
    conn = store.reader()
    store.forget_ids(sorted(s.id for s in store.list_sources())[:20])      # the oldest 200 chunks go
    first, size = conn.execute("SELECT min(rowid), max(rowid) FROM chunks").fetchone()
    assert (first, size) == (201, 300)
    expr, low = fts_budget.plan(conn, fts_query("weekly report"), budget=60)
    assert low == size - 60                  # a share of the ids in use, not of 1..300
    rows = conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid >= ?",
                        (expr, low)).fetchall()
    assert len(rows) == 61
