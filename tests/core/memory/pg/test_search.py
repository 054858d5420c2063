"""Searching on PostgreSQL: the unfiltered path (both rankings in one statement, the active
index remembered between searches) and the settings every pooled connection gets."""

from __future__ import annotations

from deskmind.core.memory.pg import vectors
from deskmind.core.memory.pg.store import PgMemoryStore
from deskmind.core.memory.reembed import reembed
from deskmind.core.memory.search import SearchFilters

from tests.core.memory.helpers import WrappedEmbedder
from tests.core.memory.pg.test_reembed import remember

LIGHTHOUSE = "deskmind://note/lighthouse"


def test_a_searcher_follows_the_index_a_reembed_swapped_in(pg_url: str, embedder) -> None:
    store = PgMemoryStore(pg_url)
    try:
        remember(store, embedder, "The lighthouse keeper polished the great lens.", uri=LIGHTHOUSE)
        remember(store, embedder, "A diary entry about sailing boats in the harbour.")
        alt = WrappedEmbedder(embedder, model_id="alt-minilm")
        models = {embedder.model_id: embedder, alt.model_id: alt}
        searcher = store.searcher(lambda model_id: models[model_id])
        assert searcher.search("lamp of the lighthouse", limit=1).hits[0].source == LIGHTHOUSE
        old = store.active_index()

        reembed(store, alt)  # drops the table of the index the searcher remembers

        assert store.active_index().model_id == alt.model_id
        queries_before = alt.queries
        for mode in ("vector", "hybrid"):
            hits = searcher.search("lamp of the lighthouse", limit=1, mode=mode).hits
            assert hits[0].source == LIGHTHOUSE and hits[0].vector_rank == 1, mode
        assert alt.queries > queries_before  # the new index's model embedded the question
        assert store.sql.query_one("SELECT to_regclass(?)", (old.float_table,))[0] is None
    finally:
        store.close()


def test_unfiltered_and_filtered_searches_agree(pg_url: str, embedder) -> None:
    store = PgMemoryStore(pg_url)
    try:
        for i in range(6):
            remember(store, embedder, f"Harbour log {i}: the ferry crossed in fog and rain.")
        remember(store, embedder, "The lighthouse keeper polished the great lens.", uri=LIGHTHOUSE)
        searcher = store.searcher(lambda _m: embedder)
        # A filter every source passes takes the snapshot path; none takes the one statement.
        everything = SearchFilters(since=0.0)
        for mode in ("fts", "vector", "hybrid"):
            fast = searcher.search("ferry in the fog", limit=5, mode=mode)
            slow = searcher.search("ferry in the fog", limit=5, mode=mode, filters=everything)
            assert [h.chunk_id for h in fast.hits] == [h.chunk_id for h in slow.hits], mode
            assert [(h.fts_rank, h.vector_rank) for h in fast.hits] == \
                [(h.fts_rank, h.vector_rank) for h in slow.hits], mode
            assert fast.hits, mode
    finally:
        store.close()


def test_every_pooled_connection_gets_the_search_settings(pg_url: str) -> None:
    store = PgMemoryStore(pg_url)
    try:
        jit, ef = store.sql.query_one(
            "SELECT current_setting('jit'), current_setting('hnsw.ef_search')")
        assert (jit, ef) == ("off", str(vectors.EF_SEARCH))
    finally:
        store.close()
