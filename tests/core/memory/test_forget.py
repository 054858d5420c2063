"""Forgetting removes a source and everything derived from it; nothing of it is findable after."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskmind.core.errors import UserInputError
from deskmind.core.memory.search import SearchFilters

from tests.core.memory.helpers import count, note, query, rows

SECRET = "The vault combination is written under the blue ceramic elephant."


def _derived_gone(core, ids: list[int], chunk_ids: list[int]) -> None:
    store = core.store
    among = lambda xs: f"({', '.join('?' * len(xs))})"  # noqa: E731
    if ids:
        assert count(store, f"SELECT count(*) FROM sources WHERE id IN {among(ids)}", *ids) == 0
        assert count(store, f"SELECT count(*) FROM documents WHERE source_id IN {among(ids)}", *ids) == 0
        assert count(store, f"SELECT count(*) FROM chunks WHERE source_id IN {among(ids)}", *ids) == 0
    idx = store.active_index()
    assert count(store, f"SELECT count(*) FROM {idx.float_table} WHERE chunk_id IN {among(chunk_ids)}",
                 *chunk_ids) == 0
    assert store.integrity_check() == []
    if store.backend == "sqlite":
        # The bit vectors and the FTS index no longer know those rows (checked against their
        # own structures; on PostgreSQL both went with the chunk rows themselves).
        assert count(store, f"SELECT count(*) FROM {idx.bits_table} WHERE rowid IN {among(chunk_ids)}",
                     *chunk_ids) == 0
        for cid in chunk_ids:
            assert query(store, "SELECT rowid FROM chunks_fts WHERE rowid = ?", cid) == []


@pytest.mark.usefixtures("on_both_backends")
def test_forget_by_id_takes_derived_sources_too(core) -> None:
    parent = core.remember(note(SECRET, uri="deskmind://meeting/m1", kind="meeting"))
    child = core.remember(note("Minutes: someone mentioned the ceramic elephant again.",
                               uri="deskmind://note/minutes", parent_id=parent))
    grandchild = core.remember(note("Summary of the minutes about the elephant.",
                                    uri="deskmind://note/summary", parent_id=child))
    other = core.remember(note("The elephant seal colony on the beach.", uri="deskmind://note/seal"))
    chunk_ids = [r[0] for r in query(core.store, "SELECT id FROM chunks WHERE source_id IN (?, ?, ?)",
                                     parent, child, grandchild)]
    receipt = core.store.forget(parent)
    assert sorted(s["id"] for s in receipt.sources) == sorted([parent, child, grandchild])
    assert receipt.derived_sources == 2
    assert receipt.documents == 3 and receipt.chunks == 3 and receipt.fts_rows == 3
    assert receipt.vectors == 3
    _derived_gone(core, [parent, child, grandchild], chunk_ids)
    searcher = core.searcher()
    for mode in ("hybrid", "fts", "vector"):
        hits = searcher.search("ceramic elephant vault combination", mode=mode).hits
        assert {h.source_id for h in hits} <= {other}
    assert core.store.get_source(other).chunk_count == 1


@pytest.mark.usefixtures("on_both_backends")
def test_forget_by_path_and_by_folder(core, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("Alpha file about glaciers retreating in the Alps.\n")
    (docs / "sub" / "b.txt").write_text("Beta file about glaciers calving into the fjord.\n")
    (docs / "sub" / "c.md").write_text("# Gamma\n\nGlaciers and moraines of Iceland.\n")
    (tmp_path / "docs-other").mkdir()
    (tmp_path / "docs-other" / "d.txt").write_text("Delta file, a sibling folder with a similar name: glaciers.\n")
    core.indexer().index([docs, tmp_path / "docs-other"])
    all_chunks = dict(query(core.store, "SELECT s.uri, c.id FROM chunks c JOIN sources s ON s.id = c.source_id"))

    r = core.store.forget(str(docs / "a.txt"))
    assert [s["uri"] for s in r.sources] == [str(docs / "a.txt")] and r.chunks == 1 and r.vectors == 1
    _derived_gone(core, [], [all_chunks[str(docs / "a.txt")]])

    r = core.store.forget(str(docs / "sub"))
    assert sorted(s["uri"] for s in r.sources) == [str(docs / "sub" / "b.txt"), str(docs / "sub" / "c.md")]
    assert r.chunks == 2 and r.vectors == 2 and r.documents == 2
    _derived_gone(core, [], [all_chunks[str(docs / "sub" / "b.txt")], all_chunks[str(docs / "sub" / "c.md")]])

    # A folder whose name starts like the forgotten one is untouched.
    left = core.searcher().search("glaciers", limit=10).hits
    assert [h.source for h in left] == [str(tmp_path / "docs-other" / "d.txt")]


@pytest.mark.usefixtures("on_both_backends")
def test_forgetting_keeps_search_results_full(core) -> None:
    """Vectors of forgotten chunks must not crowd out live ones in search."""
    keep = [core.remember(note(f"Harbour log entry {i}: the fishing boats came back with herring."))
            for i in range(6)]
    gone = [core.remember(note(f"Harbour log entry {i}: the fishing boats returned with herring and cod."))
            for i in range(6, 9)]
    searcher = core.searcher()
    assert len(searcher.search("fishing boats herring", limit=9, mode="vector").hits) == 9
    for sid in gone:
        core.store.forget(sid)
    hits = searcher.search("fishing boats herring", limit=6, mode="vector").hits
    assert sorted(h.source_id for h in hits) == sorted(keep)
    # A note saved again and again (its chunks replaced each time) must not leave stale
    # copies that push live chunks out of the results.
    draft = note("Harbour log: the fishing boats came back with herring.", uri="deskmind://note/again")
    for _ in range(40):
        core.remember(draft)
        searcher.search("herring", limit=1, mode="vector")  # searches while the note is edited
    hits = searcher.search("fishing boats herring", limit=7, mode="vector").hits
    assert len(hits) == 7 and len({h.chunk_id for h in hits}) == 7
    hits = searcher.search("fishing boats herring", limit=7, mode="hybrid").hits
    assert len(hits) == 7


@pytest.mark.usefixtures("on_both_backends")
def test_forget_unknown_reference_is_a_clear_error(core) -> None:
    core.remember(note("something to keep"))
    for ref in ("424242", "/no/such/file.txt", "deskmind://note/nope"):
        with pytest.raises(UserInputError, match="nothing in memory matches"):
            core.store.forget(ref)
    assert count(core.store, "SELECT count(*) FROM sources") == 1


@pytest.mark.usefixtures("on_both_backends")
def test_forget_with_a_filter_on_search(core) -> None:
    sid = core.remember(note(SECRET, privacy="secret"))
    assert core.searcher().search("elephant", filters=SearchFilters(privacy=["secret"])).hits
    core.store.forget(str(sid))
    assert core.searcher().search("elephant", filters=SearchFilters(privacy=["secret"])).hits == []


def test_the_receipt_counts_what_the_tables_held(core, tmp_path: Path) -> None:
    """Full-text rows are counted in the full-text index itself (not copied from the chunk
    count), links from source_links and the derivation records."""
    (tmp_path / "b.md").write_text("# B\nbee\n")
    (tmp_path / "c.md").write_text("# C\nsea\n")
    a = tmp_path / "a.md"
    a.write_text("# A\nThe ceramic elephant, see [b](b.md) and [c](c.md).\n")
    core.indexer().index([tmp_path])
    (aid,) = core.store.resolve(str(a))
    (bid,) = core.store.resolve(str(tmp_path / "b.md"))
    summary = core.remember(_derived(note("A summary made from the elephant file and the bee file.",
                                          uri="deskmind://note/summary"), [aid, bid]))
    conn = core.store.reader()
    assert rows(conn, "SELECT parent_id FROM source_derivations WHERE source_id = ? ORDER BY parent_id",
                summary) == [(aid,), (bid,)]
    # A full-text index that lost its record of a's chunk (as after damage): the receipt says
    # what the index held, not what it should have held.
    ((cid,),) = rows(conn, "SELECT id FROM chunks WHERE source_id = ?", aid)
    core.store.writer.transaction(lambda c: c.execute(
        "DELETE FROM chunks_fts_docsize WHERE id = ?", (cid,)))
    r = core.store.forget(aid)
    assert sorted(s["uri"] for s in r.sources) == [str(a), "deskmind://note/summary"]
    assert [s["derived"] for s in r.sources] == [False, True]
    assert (r.chunks, r.fts_rows, r.vectors, r.derived_sources) == (2, 1, 2, 1)
    assert r.links == 2 + 2  # a's two links; the summary's two derivation records
    core.store.writer.transaction(lambda c: c.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')"))
    assert core.store.integrity_check() == []
    assert rows(conn, "SELECT count(*) FROM source_derivations") == [(0,)]
    assert core.store.get_source(bid) is not None  # a parent of what was forgotten stays


@pytest.mark.usefixtures("on_both_backends")
def test_a_draft_derived_from_a_forgotten_source_is_refused(core) -> None:
    from deskmind.core.memory.store import SourcesGone

    gone = core.remember(note("soon forgotten"))
    core.store.forget(gone)
    with pytest.raises(SourcesGone, match=str(gone)):
        core.remember(_derived(note("made from it", uri="deskmind://note/late"), [gone]))
    assert core.store.resolve("deskmind://note/late") == []


def _derived(draft, parents: list[int]):
    draft.derived_from = parents
    return draft
