"""The PostgreSQL memory against a real server: storing, reading, forgetting, vectors."""

from __future__ import annotations

import numpy as np
import pytest

from deskmind.core.errors import UserInputError
from deskmind.core.memory.models import NewChunk, SourceDraft
from deskmind.core.memory.pg.store import PgMemoryStore
from deskmind.core.memory.pg.vectors import as_array
from deskmind.core.memory.store import SourcesGone, text_hash

from tests.core.memory.helpers import note


@pytest.fixture
def store(pg_url: str):
    s = PgMemoryStore(pg_url)
    yield s
    s.close()


def unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_put_get_and_replace_in_place(store: PgMemoryStore) -> None:
    sid = store.put_source(note(["alpha beta", "gamma delta"], uri="deskmind://note/1", title="T"))
    src = store.get_source(sid)
    assert (src.uri, src.title, src.status, src.chunk_count) == ("deskmind://note/1", "T", "indexed", 2)
    assert store.document_text(sid) == "alpha beta\n\ngamma delta"
    assert [(loc, text) for _, loc, text in store.chunks_of(sid)] == [
        ({"para": 0}, "alpha beta"), ({"para": 1}, "gamma delta")]
    again = store.put_source(note(["only one"], uri="deskmind://note/1", title="T2"))
    assert again == sid
    assert store.get_source(sid).chunk_count == 1
    assert store.get_source(sid).title == "T2"
    cid = store.chunks_of(sid)[0][0]
    assert store.chunk(cid) == (cid, sid, 0, "only one", {"para": 0})
    assert store.source_id_by_uri("deskmind://note/1") == sid
    assert store.extractor_of(sid) == "test"


def test_nul_characters_are_kept_as_replacement_characters(store: PgMemoryStore) -> None:
    sid = store.put_source(note(["a\x00b"], title="x\x00y"))
    assert store.document_text(sid) == "a\ufffdb"
    assert store.chunks_of(sid)[0][2] == "a\ufffdb"
    assert store.get_source(sid).title == "x\ufffdy"


def test_vectors_reused_by_text_hash_and_removed_with_chunks(store: PgMemoryStore) -> None:
    idx = store.ensure_active_index("m", 8)
    assert store.ensure_active_index("other", 4) == idx  # one active index, kept
    h = text_hash("shared text")
    a = store.put_source(note(["shared text"]), idx, {h: unit(1)})
    assert store.reusable_vectors(idx, [h, text_hash("nope")]) == {h}
    # The same text in another source gets the stored vector without embedding it again.
    b = store.put_source(note(["shared text"]), idx, {})
    with_vec = store.sql.query(f"SELECT chunk_id, embedding FROM {idx.float_table} ORDER BY chunk_id")
    assert len(with_vec) == 2
    assert np.allclose(as_array(with_vec[0][1]), as_array(with_vec[1][1]))
    assert np.allclose(as_array(with_vec[0][1]), unit(1))
    # Re-storing a source keeps the vectors of its unchanged chunks.
    store.put_source(note(["shared text", "new"], uri=store.get_source(a).uri), idx, {})
    assert store.sql.query_one(f"SELECT count(*) FROM {idx.float_table}")[0] == 2
    receipt = store.forget_ids([a, b])
    assert receipt.vectors == 2 and receipt.chunks == 3 and receipt.documents == 2
    assert store.sql.query_one(f"SELECT count(*) FROM {idx.float_table}")[0] == 0


def test_forget_takes_derived_sources_with_one_receipt(store: PgMemoryStore) -> None:
    meeting = store.put_source(note(["the meeting"], kind="meeting"))
    minutes = store.put_source(note(["its minutes"], kind="minutes", parent_id=meeting))
    other = store.put_source(note(["another note"]))
    convo = store.put_source(SourceDraft(
        uri="deskmind://conversation/1", kind="conversation", text="q and a", extractor="test",
        chunks=[NewChunk("q and a")], derived_from=[minutes, other]))
    assert store.derived_from(meeting) == [(minutes, "minutes", "its minutes")]
    receipt = store.forget(str(meeting))
    assert sorted(s["id"] for s in receipt.sources) == sorted([meeting, minutes, convo])
    assert receipt.derived_sources == 2
    assert receipt.chunks == 3 and receipt.fts_rows == 3 and receipt.documents == 3
    assert receipt.links == 2  # the conversation's two derivation records
    assert store.get_source(other) is not None
    assert [s.id for s in store.list_sources()] == [other]
    with pytest.raises(UserInputError, match="nothing in memory matches"):
        store.forget("deskmind://nowhere")


def test_a_source_derived_from_a_forgotten_one_is_refused(store: PgMemoryStore) -> None:
    gone = store.put_source(note(["soon gone"]))
    store.forget_ids([gone])
    draft = note(["made from it"])
    draft.derived_from = [gone]
    with pytest.raises(SourcesGone):
        store.put_source(draft)
    replacing = note(["late update"], uri="deskmind://note/late")
    replacing.replaces = gone
    with pytest.raises(SourcesGone):
        store.put_source(replacing)
    assert store.list_sources() == []


def test_resolve_paths_and_folders(store: PgMemoryStore, tmp_path) -> None:
    folder = tmp_path / "docs"
    ids = [store.put_source(note(["x"], kind="file", uri=str(folder / n))) for n in ("a.md", "b.md")]
    store.put_source(note(["y"], kind="file", uri=str(tmp_path / "docs-other" / "c.md")))
    assert store.resolve(str(folder)) == ids
    assert store.resolve(str(folder / "a.md")) == [ids[0]]
    assert store.resolve(ids[1]) == [ids[1]]
    states = store.ingest_state.states_under([str(folder)])
    assert sorted(r[0] for r in states) == sorted(str(folder / n) for n in ("a.md", "b.md"))


def test_stats_list_and_integrity(store: PgMemoryStore) -> None:
    assert store.is_empty()
    store.ensure_active_index("m", 8)
    store.put_source(note(["one"], kind="note"))
    store.put_source(note(["two", "three"], kind="file", uri="/x/y.md"))
    st = store.stats()
    assert st["sources"] == 2 and st["chunks"] == 3
    assert st["sources_by_kind"] == {"file": 1, "note": 1}
    assert st["vector_index"]["vectors"] == 0
    assert "m001_sources_documents_chunks" in st["migrations"]
    assert [s.kind for s in store.list_sources(kind="file")] == ["file"]
    assert len(store.list_sources(limit=1)) == 1
    assert not store.is_empty()
    assert store.integrity_check() == []


def test_data_version_moves_on_every_write_from_any_connection(pg_url: str) -> None:
    a, b = PgMemoryStore(pg_url), PgMemoryStore(pg_url)
    try:
        v0 = b.data_version()
        a.put_source(note(["from the other machine"]))
        assert b.data_version() > v0
        assert b.data_version() == a.data_version()
    finally:
        a.close()
        b.close()


def test_full_text_ranks_only_a_budget_of_matches_rarest_words_first(
        store: PgMemoryStore, monkeypatch) -> None:
    from deskmind.core.memory.pg import fts
    from deskmind.core.memory.search import SearchFilters

    monkeypatch.setattr(fts, "BUDGET", 5)
    common = [store.put_source(note([f"common word filler {i}"])) for i in range(12)]
    rare = store.put_source(note(["common zeppelin"]))
    store.sql.write(lambda tx: tx.execute("ANALYZE chunks"))
    freqs = fts.TermFrequencies()
    df = store.sql.read(lambda tx: freqs.of(tx, ["common", "zeppelin", "the"]))
    assert df["common"] >= 12 and df["zeppelin"] < df["common"] and df["the"] == 0
    ranked = store.sql.read(lambda tx: fts.ranked_chunks(tx, freqs, "common zeppelin", 30, SearchFilters()))
    # "common" alone would blow the budget: only chunks holding the rare word are ranked.
    assert [store.chunk(c)[1] for c in ranked] == [rare]
    # A question of one over-budget word ranks only its newest matches.
    newest = store.sql.read(lambda tx: fts.ranked_chunks(tx, freqs, "filler", 30, SearchFilters()))
    assert sorted(store.chunk(c)[1] for c in newest) == sorted(common[-5:])


def test_an_over_budget_word_ranks_about_a_budget_of_matches_when_ids_have_gaps(
        store: PgMemoryStore, monkeypatch) -> None:
    from deskmind.core.memory.pg import fts
    from deskmind.core.memory.search import SearchFilters

    monkeypatch.setattr(fts, "BUDGET", 20)
    ids = [store.put_source(note([f"heron sighting {i} at the weir"])) for i in range(200)]
    # Sources forgotten and replaced leave gaps: every other id of the range is gone.
    store.forget_ids([ids[i] for i in range(0, 200, 2)])
    store.sql.write(lambda tx: tx.execute("ANALYZE chunks"))
    freqs = fts.TermFrequencies()
    assert store.sql.read(lambda tx: freqs.of(tx, ["heron"]))["heron"] >= 90
    ranked = store.sql.read(lambda tx: fts.ranked_chunks(tx, freqs, "heron", 100, SearchFilters()))
    # the newest matches, about a budget of them (a range sized by the count held about half)
    assert 16 <= len(ranked) <= 20, len(ranked)
    kept = {store.chunk(c)[1] for c in ranked}
    assert kept <= set(ids[1::2][-25:])


def test_open_memory_gives_the_postgresql_store_for_its_url(pg_url: str) -> None:
    from deskmind.core.memory.backend import open_memory

    with open_memory(pg_url) as memory:
        assert isinstance(memory, PgMemoryStore)
        assert memory.backend == "postgres" and memory.url == pg_url
        assert memory.self_check().startswith("PostgreSQL ")
