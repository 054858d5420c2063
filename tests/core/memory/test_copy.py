"""Copying a whole memory between backends: SQLite -> PostgreSQL -> SQLite loses nothing, keeps
every id, resumes after an interruption, and refuses a target it must not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskmind.core.errors import UserInputError
from deskmind.core.memory.backend import open_memory
from deskmind.core.memory.copy import CopyRefused, MemoryCopy, check_batch
from deskmind.core.memory.store import MemoryStore

from .helpers import note
from .memory_fill import assert_same_memory, fill

QUESTIONS = ["when is the dentist appointment", "campsite for the kayak trip",
             "why does the heat pump rattle", "plum dumplings recipe"]


def _hits(store, embedder, question: str, mode: str = "hybrid") -> list[tuple]:
    hits = store.searcher(lambda _model: embedder).search(question, limit=5, mode=mode).hits
    return [(h.chunk_id, h.source_id, h.source, h.text, h.score) for h in hits]


def test_sqlite_to_postgres_and_back_loses_nothing(tmp_path: Path, pg_url: str, embedder) -> None:
    a = MemoryStore(tmp_path / "a.db")
    b = MemoryStore(tmp_path / "b.db")
    pg = open_memory(pg_url)
    try:
        made = fill(a, embed=embedder.embed, model_id=embedder.model_id, dim=embedder.dim)
        seen: list[tuple[str, int, int | None]] = []
        there = MemoryCopy(a, pg, batch=5, on_progress=lambda *p: seen.append(p)).run()
        back = MemoryCopy(pg, b, batch=7).run()

        counts = assert_same_memory(a, pg)
        assert assert_same_memory(a, b) == counts
        # Something in every table, and the receipt counts what is there.
        assert all(n > 0 for n in counts.values()), counts
        assert there.tables == {k: v for k, v in counts.items() if not k.startswith("vectors_")}
        assert sorted(there.vectors.values()) == sorted(
            v for k, v in counts.items() if k.startswith("vectors_"))
        assert there.searches == back.searches == 8
        assert there.same_top_hits == there.searches and back.same_top_hits == back.searches
        assert not there.resumed and there.nul_replaced == 0
        # Progress was reported batch by batch (5 rows at a time), ending at the totals.
        chunk_steps = [p for p in seen if p[0] == "chunks"]
        assert chunk_steps[-1][1] == counts["chunks"] == chunk_steps[-1][2]
        assert len(chunk_steps) >= counts["chunks"] // 5

        # Ids kept: provenance, the parent set after its child, derivations and links hold.
        ids = made["ids"]
        for m in (pg, b):
            assert m.get_source(made["child"]).parent_id == made["parent"]
            assert m.chunks_of(ids[3]) == a.chunks_of(ids[3])
            assert m.links.outgoing(ids[0]) == a.links.outgoing(ids[0])
            assert m.document_text(ids[5]) == a.document_text(ids[5])

        # The same engine gives the very same answers after the round trip; PostgreSQL finds
        # the same best passage by meaning.
        for q in QUESTIONS:
            assert _hits(b, embedder, q) == _hits(a, embedder, q)
            assert _hits(b, embedder, q, "fts") == _hits(a, embedder, q, "fts")
            assert _hits(pg, embedder, q, "vector")[0][:4] == _hits(a, embedder, q, "vector")[0][:4]

        # Ids handed out before are never handed out again (the forgotten one included).
        for m in (pg, b):
            new = m.put_source(note("written after the copy"))
            assert new > made["forgotten"] > max(ids)

        # Forgetting on the copy still takes what was derived (derivations kept their ids).
        receipt = b.forget(ids[2])
        assert {s["id"] for s in receipt.sources} == {ids[2], made["conversation"]}
    finally:
        for m in (a, b, pg):
            m.close()


def test_a_target_that_holds_a_memory_is_refused(tmp_path: Path, pg_url: str) -> None:
    a = MemoryStore(tmp_path / "a.db")
    pg = open_memory(pg_url)
    try:
        fill(a)
        mine = pg.put_source(note("already here: my own notes on PostgreSQL"))
        with pytest.raises(CopyRefused, match="already holds a memory .*sources.*Nothing was changed"):
            MemoryCopy(a, pg).run()
        with pytest.raises(CopyRefused, match="already holds a memory"):
            MemoryCopy(a, pg).run(resume=True)
        assert [s.id for s in pg.list_sources()] == [mine]
        assert pg.sql.query("SELECT step FROM copy_progress") == []
        with pytest.raises(CopyRefused, match="the same memory"):
            MemoryCopy(a, a).run()
    finally:
        a.close()
        pg.close()


class Stop(Exception):
    pass


def test_an_interrupted_copy_resumes_after_its_last_batch(tmp_path: Path, pg_url: str) -> None:
    a = MemoryStore(tmp_path / "a.db")
    other = MemoryStore(tmp_path / "other.db")
    pg = open_memory(pg_url)
    try:
        fill(a, extra_notes=30)
        batches = []

        def stop_midway(step: str, done: int, total: int | None) -> None:
            batches.append((step, done))
            if step == "chunks" and done >= 20:
                raise Stop()

        with pytest.raises(Stop):
            MemoryCopy(a, pg, batch=4, on_progress=stop_midway).run()
        landed = pg.sql.query_one("SELECT count(*) FROM chunks")[0]
        assert landed == 20  # every batch before the stop, and nothing of the next
        state = dict((r[0], r[1:]) for r in pg.sql.query(
            "SELECT step, copied, done FROM copy_progress"))
        assert state["sources"][1] == 1 and state["chunks"] == (20, 0)

        with pytest.raises(CopyRefused, match="unfinished copy .*--resume"):
            MemoryCopy(a, pg).run()
        fill(other)
        with pytest.raises(CopyRefused, match="copy of another memory"):
            MemoryCopy(other, pg).run(resume=True)

        resumed_steps = []
        receipt = MemoryCopy(a, pg, batch=4,
                             on_progress=lambda s, d, t: resumed_steps.append((s, d))).run(resume=True)
        assert receipt.resumed
        # It went on from the checkpoint: sources were not read again, chunks started at 20.
        assert not any(s == "sources" for s, _ in resumed_steps)
        assert [d for s, d in resumed_steps if s == "chunks"][0] == 20
        assert_same_memory(a, pg)
        # Resuming a finished copy only verifies it again.
        again = MemoryCopy(a, pg).run(resume=True)
        assert again.tables == receipt.tables
    finally:
        for m in (a, other, pg):
            m.close()


def test_nul_characters_become_replacement_characters_on_postgres(tmp_path: Path, pg_url: str) -> None:
    a = MemoryStore(tmp_path / "a.db")
    pg = open_memory(pg_url)
    try:
        sid = a.put_source(note(["a scanned page with a stray \x00 byte in it"]))
        receipt = MemoryCopy(a, pg).run()
        assert receipt.nul_replaced >= 2  # the document and its chunk (and the title)
        assert pg.document_text(sid) == "a scanned page with a stray \ufffd byte in it"
    finally:
        a.close()
        pg.close()


def test_data_the_target_has_no_column_for_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    a = MemoryStore(tmp_path / "a.db")
    b = MemoryStore(tmp_path / "b.db")
    try:
        sid = a.put_source(note("a note from a newer Deskmind"))
        a.sql.write(lambda tx: tx.execute("ALTER TABLE sources ADD COLUMN flavour TEXT"))
        # An empty column only one side has is no loss: the copy goes ahead.
        MemoryCopy(a, b).run()
        c = MemoryStore(tmp_path / "c.db")
        try:
            a.sql.write(lambda tx: tx.execute("UPDATE sources SET flavour = 'x' WHERE id = ?", (sid,)))
            with pytest.raises(CopyRefused, match=r"no column sources\.flavour.*1 rows.*nothing was copied"):
                MemoryCopy(a, c).run()
            assert c.sql.query("SELECT step FROM copy_progress") == []
        finally:
            c.close()
    finally:
        a.close()
        b.close()


def test_a_table_both_sides_know_but_the_copy_does_not_is_copied_by_its_key(tmp_path: Path) -> None:
    a = MemoryStore(tmp_path / "a.db")
    b = MemoryStore(tmp_path / "b.db")
    c = MemoryStore(tmp_path / "c.db")
    try:
        for m in (a, b):
            m.sql.write(lambda tx: tx.execute(
                "CREATE TABLE calendars (name TEXT PRIMARY KEY, seen_at REAL NOT NULL)"))
        a.sql.write(lambda tx: tx.executemany("INSERT INTO calendars VALUES (?, ?)",
                                              [("home", 1.0), ("work", 2.0)]))
        MemoryCopy(a, b, batch=1).run()
        assert b.sql.query("SELECT name, seen_at FROM calendars ORDER BY name") == [
            ("home", 1.0), ("work", 2.0)]
        with pytest.raises(CopyRefused, match="table 'calendars'.*no such table there"):
            MemoryCopy(a, c).run()
    finally:
        for m in (a, b, c):
            m.close()


@pytest.mark.parametrize("batch", [0, -3, 100_001])
def test_a_batch_size_out_of_range_is_refused(batch: int) -> None:
    with pytest.raises(UserInputError, match="--batch must be between 1 and 100000"):
        check_batch(batch)


def test_a_copied_postgres_database_has_the_schema_of_a_migrated_one(tmp_path: Path, pg_url: str,
                                                                      pg_server) -> None:
    """The copy drops and rebuilds the full-text index and builds HNSW indexes afterwards:
    the result must be indistinguishable from a database that was written to directly."""
    a = MemoryStore(tmp_path / "a.db")
    pg = open_memory(pg_url)
    fresh_name = pg_server.new_database()
    fresh = open_memory(pg_server.url(fresh_name))
    try:
        fill(a)
        fill(fresh)
        MemoryCopy(a, pg, batch=3).run()
        indexdefs = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        # (fill() adds the second, half-built index on SQLite only.)
        copied = [r for r in pg.sql.query(indexdefs) if not r[0].startswith("vectors_2")]
        assert copied == fresh.sql.query(indexdefs)
        assert any(name == "chunks_tsv" for name, _ in copied)
        assert pg.integrity_check() == []
    finally:
        a.close()
        pg.close()
        fresh.close()
        pg_server.drop_database(fresh_name)


def test_an_unfinished_copy_is_not_copied_from(tmp_path: Path) -> None:
    a, b, c = (MemoryStore(tmp_path / f"{n}.db") for n in "abc")
    try:
        fill(a, extra_notes=10)
        with pytest.raises(Stop):
            MemoryCopy(a, b, batch=5, on_progress=lambda s, d, t: _stop_at(s, d, "chunks", 10)).run()
        with pytest.raises(CopyRefused, match="holds an unfinished copy of another memory.*--resume"):
            MemoryCopy(b, c).run()
        assert c.sql.query("SELECT step FROM copy_progress") == []
        MemoryCopy(a, b, batch=5).run(resume=True)
        MemoryCopy(b, c).run()  # finished: a memory like any other
        assert_same_memory(a, c)
    finally:
        for m in (a, b, c):
            m.close()


def _stop_at(step: str, done: int, at_step: str, at: int) -> None:
    if step == at_step and done >= at:
        raise Stop()
