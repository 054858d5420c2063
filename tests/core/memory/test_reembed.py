"""Re-embedding builds a new index beside the active one and swaps it in atomically."""

from __future__ import annotations

import threading
import time

import pytest

from deskmind.core.embed import base
from deskmind.core.memory import reembed as reembed_mod
from deskmind.core.memory.reembed import reembed

from tests.core.memory.helpers import WrappedEmbedder, count, note

ALT = "alt-minilm"
TOPICS = ["sailing boats", "sourdough bread", "mountain hiking", "jazz piano", "tax forms"]


@pytest.fixture
def alt_model(embedder):
    """A second embedding model id: the real ONNX embedder under another name, slowed down."""
    made: list[WrappedEmbedder] = []

    def factory(spec: base.EmbedderSpec) -> WrappedEmbedder:
        w = WrappedEmbedder(embedder, model_id=spec.model_id, delay=0.25)
        made.append(w)
        return w

    base.register(ALT, factory)
    yield made
    base._FACTORIES.pop(ALT, None)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several batches out of a small corpus, so there is a "during" to observe.
    monkeypatch.setattr(reembed_mod, "BATCH", 8)


def table_names(store) -> set[str]:
    if store.backend == "sqlite":
        return {r[0] for r in store.sql.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {r[0] for r in store.sql.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}


def _fill(core, n: int = 30) -> dict[str, int]:
    ids = {}
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        ids[f"{topic}-{i}"] = core.remember(note(f"Entry {i} of the diary, all about {topic}."))
    core.remember(note("The lighthouse keeper polished the great lens every evening.",
                       uri="deskmind://note/lighthouse"))
    return ids


@pytest.mark.usefixtures("on_both_backends")
def test_search_keeps_working_during_a_rebuild_and_the_swap_is_atomic(core, alt_model, small_batches) -> None:
    _fill(core)
    old = core.store.active_index()
    alt = core.embedder(ALT)
    result: list = []
    worker = threading.Thread(target=lambda: result.append(reembed(core.store, alt)))
    searcher = core.searcher()
    worker.start()
    seen_models: set[str] = set()
    searches = 0
    added = None
    while worker.is_alive():
        hits = searcher.search("lamp of the lighthouse", limit=3).hits
        assert hits and hits[0].source == "deskmind://note/lighthouse"
        seen_models.add(core.store.active_index().model_id)
        searches += 1
        if added is None and count(core.store, "SELECT count(*) FROM vector_indexes") == 2:
            # A note written during the rebuild must make it into the new index too.
            added = core.remember(note("A late note about an orchard of pear trees."))
        time.sleep(0.02)
    worker.join()
    assert searches >= 5 and added is not None
    assert old.model_id in seen_models  # search ran against the old index during the build
    res = result[0]
    new = core.store.active_index()
    assert new.model_id == ALT and new.id == res.index_id and res.replaced_model == old.model_id
    n_chunks = count(core.store, "SELECT count(*) FROM chunks")
    assert count(core.store, f"SELECT count(*) FROM {new.float_table}") == n_chunks
    assert count(core.store, "SELECT count(*) FROM vector_indexes") == 1
    tables = table_names(core.store)
    assert old.float_table not in tables and old.bits_table not in tables
    assert not any(t.startswith(old.float_table) for t in tables)
    # The new index answers, with the new model embedding the query.
    before = alt.queries
    hits = core.searcher().search("pear orchard", limit=1, mode="vector").hits
    assert hits[0].source_id == added and alt.queries == before + 1
    assert core.store.integrity_check() == []


@pytest.mark.usefixtures("on_both_backends")
def test_a_cancelled_rebuild_resumes_where_it_stopped(core, alt_model, small_batches) -> None:
    _fill(core)
    total = count(core.store, "SELECT count(*) FROM chunks")
    alt = core.embedder(ALT)
    cancel = threading.Event()

    def stop_after_two_batches(p: reembed_mod.ReembedProgress) -> None:
        if p.done >= 16:
            cancel.set()

    assert reembed(core.store, alt, on_progress=stop_after_two_batches, cancel=cancel) is None
    stats = core.store.stats()
    assert stats["vector_index"]["model_id"] == core.embedder().model_id
    assert [b["model_id"] for b in stats["building_indexes"]] == [ALT]
    building = stats["building_indexes"][0]
    done = count(core.store, f"SELECT count(*) FROM vectors_{building['id']}")
    assert done == 16
    # Search still uses the old, complete index meanwhile.
    assert core.searcher().search("lighthouse lens", limit=1).hits[0].source == "deskmind://note/lighthouse"

    counting = WrappedEmbedder(alt.inner, model_id=ALT)
    res = reembed(core.store, counting)
    assert res.index_id == building["id"]
    assert counting.texts == total - done == res.embedded
    assert core.store.active_index().model_id == ALT
    assert core.store.stats()["building_indexes"] == []
    assert core.store.stats()["vector_index"]["vectors"] == total


@pytest.mark.usefixtures("on_both_backends")
def test_an_abandoned_build_for_another_model_is_replaced(core, alt_model, small_batches) -> None:
    _fill(core, 10)
    alt = core.embedder(ALT)
    cancel = threading.Event()
    reembed(core.store, alt, on_progress=lambda p: cancel.set(), cancel=cancel)
    assert [b["model_id"] for b in core.store.stats()["building_indexes"]] == [ALT]
    # Rebuilding with the original model drops the half-made alt index first.
    res = reembed(core.store, core.embedder())
    stats = core.store.stats()
    assert stats["building_indexes"] == [] and stats["vector_index"]["model_id"] == core.embedder().model_id
    assert res.embedded == stats["chunks"] == stats["vector_index"]["vectors"]
    tables = table_names(core.store)
    assert sorted(t for t in tables if t.startswith("vectors_")) == [f"vectors_{res.index_id}"]


@pytest.mark.usefixtures("on_both_backends")
def test_notes_after_a_model_switch_are_embedded_with_the_new_model(core, alt_model) -> None:
    _fill(core, 5)
    reembed(core.store, core.embedder(ALT))
    alt = alt_model[-1]
    before = alt.texts
    sid = core.remember(note("A fresh note about quince jelly, written after the switch."))
    assert alt.texts == before + 1
    idx = core.store.active_index()
    assert count(core.store, f"SELECT count(*) FROM {idx.float_table} v JOIN chunks c ON c.id = v.chunk_id "
                             "WHERE c.source_id = ?", sid) == 1
    assert core.searcher().search("quince preserve", limit=1, mode="vector").hits[0].source_id == sid


@pytest.mark.usefixtures("on_both_backends")
def test_a_write_prepared_against_a_swapped_out_index_still_lands(core, embedder, alt_model) -> None:
    from deskmind.core.memory.store import text_hash

    _fill(core, 5)
    stale = core.store.active_index()
    text = "Prepared before the swap: the bell tower clock runs four minutes fast."
    vecs = {text_hash(text): embedder.embed([text])[0]}
    # Same model, new index (a rebuild): the prepared vector fits and is kept.
    reembed(core.store, core.embedder())
    assert core.store.reusable_vectors(stale, vecs) == set()  # the old tables are gone
    sid = core.store.put_source(note(text), stale, dict(vecs))
    idx = core.store.active_index()
    in_index = (f"SELECT count(*) FROM {{t}} v JOIN chunks c ON c.id = v.chunk_id WHERE c.source_id = ?")
    assert idx.id != stale.id and count(core.store, in_index.format(t=idx.float_table), sid) == 1
    # Another model now (a switch): a vector of the old model must not enter the new index.
    reembed(core.store, core.embedder(ALT))
    text2 = "Prepared before the switch: the weather vane points north-east."
    sid2 = core.store.put_source(note(text2), idx, {text_hash(text2): embedder.embed([text2])[0]})
    alt_idx = core.store.active_index()
    assert alt_idx.model_id == ALT
    assert count(core.store, in_index.format(t=alt_idx.float_table), sid2) == 0
    assert core.store.get_source(sid2).chunk_count == 1
    assert core.store.integrity_check() == []


@pytest.mark.usefixtures("on_both_backends")
def test_files_indexed_after_a_model_switch_are_embedded_with_the_new_model(core, alt_model, tmp_path) -> None:
    _fill(core, 5)
    reembed(core.store, core.embedder(ALT))
    alt = alt_model[-1]
    f = tmp_path / "after.txt"
    f.write_text("Indexed after the switch: the canal lock gates were repainted green.\n")
    before = alt.texts
    summary = core.indexer().index([f])
    assert summary.count("indexed") == 1 and summary.embedded_chunks == 1 and alt.texts == before + 1
    stats = core.store.stats()
    assert stats["vector_index"]["model_id"] == ALT
    assert stats["vector_index"]["vectors"] == stats["chunks"]
