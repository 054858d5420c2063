"""Re-embedding on PostgreSQL: a new index is built beside the active one while another
machine keeps writing, then swapped in with every chunk in it."""

from __future__ import annotations

import threading

import pytest

from deskmind.core.memory import reembed as reembed_mod
from deskmind.core.memory.pg.store import PgMemoryStore
from deskmind.core.memory.reembed import reembed
from deskmind.core.memory.store import text_hash

from tests.core.memory.helpers import WrappedEmbedder, note


def remember(store: PgMemoryStore, emb, text: str, uri: str | None = None) -> int:
    idx = store.active_index() or store.ensure_active_index(emb.model_id, emb.dim)
    return store.put_source(note(text, uri=uri), idx, {text_hash(text): emb.embed([text])[0]})


def test_a_rebuild_swaps_in_a_complete_index_while_another_machine_writes(
        pg_url: str, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reembed_mod, "BATCH", 4)
    here, there = PgMemoryStore(pg_url), PgMemoryStore(pg_url)
    try:
        for i in range(12):
            remember(here, embedder, f"Diary entry {i} about sailing boats and harbours.")
        remember(here, embedder, "The lighthouse keeper polished the great lens.",
                 uri="deskmind://note/lighthouse")
        old = here.active_index()
        alt = WrappedEmbedder(embedder, model_id="alt-minilm", delay=0.1)
        result: list = []
        worker = threading.Thread(target=lambda: result.append(reembed(here, alt)))
        worker.start()
        late = []
        searcher = there.searcher(lambda _m: embedder)
        while worker.is_alive():
            hits = searcher.search("lamp of the lighthouse", limit=3).hits
            assert hits[0].source == "deskmind://note/lighthouse"
            if not late and len(there.building_indexes()) == 1:
                # Written on the other machine during the build, into the old active index.
                late.append(remember(there, embedder, "A late note about an orchard of pears."))
        worker.join()
        assert late, "the build ended before a note could be written during it"
        res = result[0]
        new = there.active_index()
        assert (new.model_id, new.id, res.replaced_model) == ("alt-minilm", res.index_id, old.model_id)
        chunks = there.sql.query_one("SELECT count(*) FROM chunks")[0]
        assert there.sql.query_one(f"SELECT count(*) FROM {new.float_table}")[0] == chunks == 14
        assert there.sql.query_one("SELECT count(*) FROM vector_indexes")[0] == 1
        assert there.sql.query_one("SELECT to_regclass(?)", (old.float_table,))[0] is None
        hits = there.searcher(lambda _m: alt).search("pear orchard", mode="vector", limit=1).hits
        assert hits[0].source_id == late[0]
    finally:
        here.close()
        there.close()
