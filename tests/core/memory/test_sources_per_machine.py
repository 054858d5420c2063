"""m050_sources_per_machine on a memory that already holds sources, on both backends: every row
is kept with its id, file sources become this machine's, everything else stays shared, and the
same path can then be stored once per machine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from deskmind.core.errors import StorageError
from deskmind.core.memory import db, migrations
from deskmind.core.memory.machine import Machine, load_machine
from deskmind.core.memory.models import NewChunk, SourceDraft
from deskmind.core.memory.store import MemoryStore

from tests.core.memory.helpers import note, rows, scalar

LAPTOP = Machine("laptop-00000001", "laptop")
DESKTOP = Machine("desktop-0000002", "desktop")
FILE = "/home/ana/notes/boat.md"


def _before_m050(names: list) -> list:
    return names[:[n for n, _ in names].index("m050_sources_per_machine")]


def _fill(execute) -> None:
    """What a memory from before m050 may hold: a file with text, chunks and links, a note, a
    source derived from both, and a deleted source whose id must never come back."""
    now = time.time()
    ins = ("INSERT INTO sources(id, uri, kind, title, status, parent_id, created_at, updated_at) "
           "VALUES ({}, '{}', '{}', '{}', 'indexed', {}, {}, {})")
    execute(ins.format(1, FILE, "markdown", "Boat", "NULL", now, now))
    execute(ins.format(2, "deskmind://note/n1", "note", "Mooring", "NULL", now, now))
    execute(ins.format(3, "deskmind://meeting/m1/minutes", "minutes", "Minutes", 2, now, now))
    execute(ins.format(5, "file:///home/ana/odd-name.md", "markdown", "Odd", "NULL", now, now))
    execute(ins.format(40, "/home/ana/gone.md", "markdown", "Gone", "NULL", now, now))
    execute("DELETE FROM sources WHERE id = 40")
    for sid, text in ((1, "the varnish of the boat needs two coats"),
                      (2, "the mooring fee is due in march"), (3, "minutes of the mooring call")):
        execute(f"INSERT INTO documents(source_id, text, extractor) VALUES ({sid}, '{text}', 't')")
        execute("INSERT INTO chunks(source_id, ord, text, locator, text_hash, created_at) "
                f"VALUES ({sid}, 0, '{text}', '{{}}', 'h{sid}', {now})")
    execute("INSERT INTO source_derivations(source_id, parent_id) VALUES (3, 1)")
    execute("INSERT INTO source_links(source_id, kind, target) VALUES (1, 'link', '/home/ana/x.md')")


def _check(store, counts_before: dict[str, int]) -> None:
    for table, n in counts_before.items():
        assert store.sql.query_one(f"SELECT count(*) FROM {table}")[0] == n, table
    machines = dict(store.sql.query("SELECT id, machine FROM sources"))
    assert machines == {1: LAPTOP.id, 2: "", 3: "", 5: LAPTOP.id}
    # The file is this machine's; the note and minutes are found by uri from any machine.
    assert store.resolve(FILE) == [1]
    assert store.source_id_by_uri("deskmind://note/n1") == 2
    assert store.get_source(1).machine == LAPTOP.id and store.get_source(2).machine == ""
    # Foreign keys still hold: forgetting the file takes the minutes derived from it.
    receipt = store.forget(FILE)
    assert sorted(s["id"] for s in receipt.sources) == [1, 3] and receipt.chunks == 2
    assert receipt.links == 2  # its link and the derivation naming it
    assert store.sql.query_one("SELECT count(*) FROM chunks")[0] == 1
    # Ids are never handed out again, not even the deleted one's.
    sid = store.put_source(note("a new note after the migration"))
    assert sid > 40


def test_m050_on_an_existing_sqlite_memory_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = db.connect(path)
    try:
        # The schema a Deskmind from before m050 made (its migrations, as it ran them).
        migrations.applied(conn)
        for name, fn in _before_m050(migrations.MIGRATIONS):
            conn.execute("BEGIN IMMEDIATE")
            fn(conn)
            conn.execute("INSERT INTO migrations(name, applied_at) VALUES (?, 0)", (name,))
            conn.execute("COMMIT")
        conn.execute("BEGIN")
        _fill(conn.execute)
        conn.execute("COMMIT")
        before = {t: scalar(conn, f"SELECT count(*) FROM {t}") for t in
                  ("sources", "documents", "chunks", "source_derivations", "source_links")}
        indexes = {r[0] for r in rows(conn, "SELECT name FROM sqlite_master WHERE type = 'index' "
                                            "AND tbl_name = 'sources' AND sql IS NOT NULL")}
    finally:
        conn.close()
    with MemoryStore(path, machine=LAPTOP) as store:
        assert "m050_sources_per_machine" in store.stats()["migrations"]
        r = store.reader()
        assert rows(r, "PRAGMA foreign_key_check") == []
        assert scalar(r, "PRAGMA foreign_keys") == 1
        after = {x[0] for x in rows(r, "SELECT name FROM sqlite_master WHERE type = 'index' "
                                       "AND tbl_name = 'sources' AND sql IS NOT NULL")}
        assert indexes < after  # its own indexes came back, with the machine's
        assert scalar(r, "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'varnish'") == 1
        _check(store, before)


def test_m050_on_an_existing_postgres_memory_keeps_every_row(pg_server, monkeypatch) -> None:
    import psycopg

    from deskmind.core.memory.pg import migrations as pg_migrations
    from deskmind.core.memory.pg.store import PgMemoryStore

    name = pg_server.new_database(migrated=False)
    url = pg_server.url(name)
    try:
        with monkeypatch.context() as m:
            m.setattr(pg_migrations, "MIGRATIONS", _before_m050(pg_migrations.MIGRATIONS))
            PgMemoryStore(url, machine=LAPTOP).close()
        with psycopg.connect(url, autocommit=False) as conn:
            _fill(conn.execute)
            conn.execute("SELECT setval(pg_get_serial_sequence('sources', 'id'), 40)")
            conn.commit()
            before = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in
                      ("sources", "documents", "chunks", "source_derivations", "source_links")}
        with PgMemoryStore(url, machine=LAPTOP) as store:
            assert "m050_sources_per_machine" in store.stats()["migrations"]
            _check(store, before)
    finally:
        pg_server.drop_database(name)


@pytest.mark.usefixtures("on_both_backends")
def test_one_path_is_a_source_per_machine_and_each_machine_reads_its_own(tmp_path: Path) -> None:
    from deskmind.core.app import Core
    from deskmind.core.memory.backend import open_memory

    loc = Core().memory_location()
    laptop = open_memory(loc, machine=LAPTOP)
    desktop = open_memory(loc, machine=DESKTOP)
    try:
        draft = lambda text: SourceDraft(uri=FILE, kind="markdown", title="Boat", text=text,  # noqa: E731
                                         chunks=[NewChunk(text)], content_hash=text)
        a = laptop.put_source(draft("varnish: two coats"))
        b = desktop.put_source(draft("varnish: three coats"))
        assert a != b
        assert laptop.put_source(draft("varnish: two coats, sanded")) == a  # replaced in place
        assert laptop.resolve(FILE) == [a] and desktop.resolve(FILE) == [b]
        assert laptop.source_id_by_uri(FILE) == a and desktop.source_id_by_uri(FILE) == b
        assert laptop.document_text(b) == "varnish: three coats"  # ids mean the same everywhere
        assert [r[:2] for r in laptop.ingest_state.states_under([str(Path(FILE).parent)])] == [(FILE, a)]
        assert laptop.ingest_state.states_of([FILE])[0][1] == a
        assert desktop.ingest_state.states_under(["/home/ana"])[0][1] == b
        assert laptop.machines() == {LAPTOP.id: "laptop", DESKTOP.id: "desktop"}
        # A shared note is one source whoever stores it.
        n = laptop.put_source(note("moor at pontoon B", uri="deskmind://note/shared"))
        assert desktop.put_source(note("moor at pontoon C", uri="deskmind://note/shared")) == n
        # forget PATH on the desktop: only its own file.
        assert [s["id"] for s in desktop.forget(FILE).sources] == [b]
        assert laptop.get_source(a) is not None
    finally:
        laptop.close()
        desktop.close()


def test_the_machine_id_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_machine(tmp_path / "data")
    assert load_machine(tmp_path / "data") == first
    assert (tmp_path / "data" / "machine-id").read_text().strip() == first.id
    other = load_machine(tmp_path / "elsewhere")
    assert other.id != first.id


@pytest.mark.parametrize("content", ["", "not an id!", "x" * 200])
def test_a_damaged_machine_id_file_is_refused_saying_what_to_do(tmp_path: Path, content: str) -> None:
    (tmp_path / "machine-id").write_text(content)
    with pytest.raises(StorageError, match=r"machine-id holds .*move it aside"):
        load_machine(tmp_path)
    assert (tmp_path / "machine-id").read_text() == content  # nothing overwritten


def _load_id(folder: str) -> str:
    return load_machine(Path(folder)).id


def test_processes_making_the_machine_id_at_once_agree_on_one(tmp_path: Path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        ids = pool.map(_load_id, [str(tmp_path / "data")] * 12)
    assert len(set(ids)) == 1
    assert (tmp_path / "data" / "machine-id").read_text().strip() == ids[0]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["machine-id"]  # no temp files left
