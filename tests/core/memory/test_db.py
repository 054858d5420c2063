"""The SQLite binding: sqlite-vec and FTS5 load under this Python; bad files are refused."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from deskmind.core.errors import StorageError
from deskmind.core.memory import db
from deskmind.core.memory.store import MemoryStore

from tests.core.memory.helpers import scalar


def test_connection_loads_sqlite_vec_and_has_fts5(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "x.db")
    try:
        # The binding ships its own SQLite; the stdlib one here cannot load extensions.
        assert db.sqlite.__name__ == "sqlean"
        assert scalar(conn, "SELECT vec_version()").startswith("v")
        assert scalar(conn, "PRAGMA journal_mode") == "wal"

        conn.execute("CREATE VIRTUAL TABLE f USING fts5(body)")
        conn.execute("INSERT INTO f(body) VALUES ('sqlite vectors in python'), ('nothing here')")
        assert scalar(conn, "SELECT body FROM f WHERE f MATCH 'vectors'") == "sqlite vectors in python"

        conn.execute("CREATE VIRTUAL TABLE v USING vec0(e float[3])")
        for i, vec in enumerate(([1, 0, 0], [0, 1, 0], [0.9, 0.1, 0]), 1):
            conn.execute("INSERT INTO v(rowid, e) VALUES (?, ?)",
                         (i, np.asarray(vec, dtype=np.float32).tobytes()))
        got = conn.execute(
            "SELECT rowid FROM v WHERE e MATCH ? ORDER BY distance LIMIT 2",
            (np.asarray([1, 0, 0], dtype=np.float32).tobytes(),)).fetchall()
        assert [r[0] for r in got] == [1, 3]
        assert scalar(conn, "SELECT length(vec_quantize_binary(vec_f32('[1, -1, 1, -1, 1, -1, 1, -1]')))") == 1
    finally:
        conn.close()


def test_store_reader_and_writer_connections_have_the_extension(core) -> None:
    store = core.store
    assert scalar(store.reader(), "SELECT vec_version()").startswith("v")
    assert store.writer.call(lambda c: scalar(c, "SELECT vec_version()")).startswith("v")
    # A reader opened on another thread gets the extension too.
    seen: list[str] = []
    t = threading.Thread(target=lambda: seen.append(scalar(store.reader(), "SELECT vec_version()")))
    t.start()
    t.join()
    assert seen and seen[0].startswith("v")
    print(f"python {sys.version.split()[0]} at {sys.executable}")


def test_connections_read_through_a_bounded_page_cache_not_a_memory_map(core) -> None:
    """Mapped pages stay in the app's resident memory, once per connection; the page cache
    is bounded per connection."""
    store = core.store
    reader = store.reader()
    assert scalar(reader, "PRAGMA mmap_size") == 0
    assert scalar(reader, "PRAGMA cache_size") == -db.READER_CACHE_KIB
    assert store.writer.call(lambda c: scalar(c, "PRAGMA mmap_size")) == 0
    assert store.writer.call(lambda c: scalar(c, "PRAGMA cache_size")) == -db.WRITER_CACHE_KIB


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    junk = b"these are my shopping notes, not a database\n" * 100
    path.write_bytes(junk)
    with pytest.raises(StorageError, match="is not a Deskmind memory database"):
        MemoryStore(path)
    assert path.read_bytes() == junk
    assert not Path(str(path) + "-wal").exists()


def test_a_damaged_database_with_a_sqlite_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    junk = b"SQLite format 3\x00" + bytes(range(256)) * 64
    path.write_bytes(junk)
    with pytest.raises(StorageError, match="not a Deskmind memory database|damaged"):
        MemoryStore(path)
    assert path.read_bytes() == junk


def test_a_folder_where_the_database_should_be_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    path.mkdir()
    with pytest.raises(StorageError, match="is a folder"):
        MemoryStore(path)


def test_closing_twice_is_harmless_and_writes_after_close_are_refused(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.db")
    store.close()
    store.close()
    with pytest.raises(StorageError, match="is closed"):
        store.ensure_active_index("model", 4)


def test_a_refused_database_leaves_no_writer_thread_behind(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(4080))
    def writers() -> int:
        return sum(t.name.startswith("deskmind-db-writer") for t in threading.enumerate())

    before = writers()
    for _ in range(3):
        with pytest.raises(StorageError):
            MemoryStore(path)
    assert writers() == before


def test_another_programs_sqlite_database_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    conn = db.connect(path)
    conn.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    conn.execute("INSERT INTO moz_places(url) VALUES ('https://example.org')")
    conn.close()
    with pytest.raises(StorageError, match="not a Deskmind memory database.*moz_places"):
        MemoryStore(path)
    conn = db.connect(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert names == {"moz_places"}
    finally:
        conn.close()
