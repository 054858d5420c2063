"""Named, ordered schema migrations: old databases move forward, newer ones are refused."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from deskmind.core.errors import StorageError
from deskmind.core.memory import db, migrations
from deskmind.core.memory.store import MemoryStore

from tests.core.memory.helpers import note, rows, scalar

NAMES = [name for name, _ in migrations.MIGRATIONS]


def _old_database(path: Path, upto: int) -> None:
    """A database made by a Deskmind that knew only the first ``upto`` migrations."""
    conn = db.connect(path)
    try:
        migrations.applied(conn)
        for name, fn in migrations.MIGRATIONS[:upto]:
            conn.execute("BEGIN IMMEDIATE")
            if migrations.wants_machine(fn):
                fn(conn, lambda: "old-machine-0001")
            else:
                fn(conn)
            conn.execute("INSERT INTO migrations(name, applied_at) VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        now = time.time()
        conn.execute(
            "INSERT INTO sources(uri, kind, title, status, created_at, updated_at) "
            "VALUES ('deskmind://note/old', 'note', 'from an old version', 'indexed', ?, ?)",
            (now, now))
        sid = scalar(conn, "SELECT id FROM sources WHERE uri = 'deskmind://note/old'")
        conn.execute("INSERT INTO documents(source_id, text, extractor) VALUES (?, 'old text', 'test')", (sid,))
        conn.execute(
            "INSERT INTO chunks(source_id, ord, text, locator, text_hash, created_at) "
            "VALUES (?, 0, 'the lighthouse keeper logbook', '{}', 'h', ?)", (sid, now))
    finally:
        conn.close()


def test_migrations_are_named_unique_and_ordered() -> None:
    assert len(NAMES) >= 2
    assert len(set(NAMES)) == len(NAMES)
    assert all(re.fullmatch(r"m\d{3}_[a-z0-9_]+", n) for n in NAMES), NAMES
    assert NAMES == sorted(NAMES), "migrations must be declared in the order of their numbers"


def test_a_new_database_records_every_migration_in_order(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m.db") as store:
        assert store.stats()["migrations"] == NAMES
        tables = {r[0] for r in rows(store.reader(), "SELECT name FROM sqlite_master")}
        assert {"sources", "documents", "chunks", "chunks_fts", "vector_indexes", "migrations",
                "source_derivations"} <= tables


@pytest.mark.parametrize("upto", range(1, len(NAMES)))
def test_an_older_database_is_migrated_forward_keeping_its_data(tmp_path: Path, upto: int) -> None:
    path = tmp_path / "old.db"
    _old_database(path, upto)
    with MemoryStore(path) as store:
        assert store.stats()["migrations"] == NAMES
        src = store.get_source(store.resolve("deskmind://note/old")[0])
        assert src.title == "from an old version" and src.chunk_count == 1
        # The old chunk is still findable by full text, and the new tables work.
        hit = scalar(store.reader(), "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'lighthouse'")
        assert hit == scalar(store.reader(), "SELECT id FROM chunks")
        idx = store.ensure_active_index("test-model", 4)
        assert store.active_index() == idx
    # Opening again runs nothing more.
    with MemoryStore(path) as store:
        assert scalar(store.reader(), "SELECT count(*) FROM migrations") == len(NAMES)


def test_a_database_from_a_newer_deskmind_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with MemoryStore(path) as store:
        store.put_source(note("kept as it was"))
    conn = db.connect(path)
    conn.execute("INSERT INTO migrations(name, applied_at) VALUES ('m999_from_the_future', 0)")
    conn.close()
    with pytest.raises(StorageError, match=r"newer Deskmind.*m999_from_the_future.*upgrade"):
        MemoryStore(path)
    conn = db.connect(path)
    try:
        assert scalar(conn, "SELECT count(*) FROM sources") == 1
        assert scalar(conn, "SELECT count(*) FROM migrations") == len(NAMES) + 1
    finally:
        conn.close()


def test_several_openers_of_a_new_database_migrate_it_once(tmp_path: Path) -> None:
    """The tray app and a command opening a fresh database at the same moment."""
    for attempt in range(20):
        path = tmp_path / f"race{attempt}.db"
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []
        stores: list[MemoryStore] = []

        def open_it() -> None:
            barrier.wait()
            try:
                stores.append(MemoryStore(path))
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in stores:
            s.close()
        assert errors == []
        with MemoryStore(path) as store:
            assert store.stats()["migrations"] == NAMES
