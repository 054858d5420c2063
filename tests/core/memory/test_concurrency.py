"""One writer: concurrent ingest, notes and searches; backups while the database is in use."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from deskmind.core.errors import UserInputError
from deskmind.core.memory import db

from tests.core.memory.helpers import note, rows, scalar


def _check_copy(path: Path) -> dict[str, int]:
    conn = db.connect(path, readonly=True)
    try:
        assert rows(conn, "PRAGMA integrity_check") == [("ok",)]
        counts = {t: scalar(conn, f"SELECT count(*) FROM {t}")
                  for t in ("sources", "documents", "chunks", "chunks_fts_docsize")}
        # Every source written by the busy thread is whole: its document and all 3 chunks.
        per_source = rows(conn, "SELECT s.id, (SELECT count(*) FROM chunks c WHERE c.source_id = s.id), "
                                "(SELECT count(*) FROM documents d WHERE d.source_id = s.id) "
                                "FROM sources s WHERE s.uri LIKE 'deskmind://note/busy-%'")
        assert all(n == 3 and d == 1 for _, n, d in per_source), per_source
        assert counts["chunks"] == counts["chunks_fts_docsize"]
        assert counts["sources"] == counts["documents"]
        return counts
    finally:
        conn.close()


def test_backup_is_consistent_while_another_thread_writes(core, tmp_path: Path) -> None:
    store = core.store
    # Big enough (several MB) that a page-by-page copy takes several steps.
    for i in range(5):
        store.put_source(note(["big document %d " % i + "lorem ipsum " * 90_000], uri=f"deskmind://note/big-{i}"))
    stop = threading.Event()
    written = [0]
    errors: list[BaseException] = []

    def busy() -> None:
        try:
            while not stop.is_set():
                n = written[0]
                store.put_source(note([f"busy note {n} part {p}" for p in range(3)],
                                      uri=f"deskmind://note/busy-{n}"))
                written[0] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=busy)
    t.start()
    try:
        while written[0] < 20:
            time.sleep(0.01)
        dests = []
        for k in range(2):
            t0 = time.monotonic()
            dests.append(store.backup(tmp_path / f"backup-{k}.db"))
            took = time.monotonic() - t0
            print(f"backup {k}: {took:.2f} s, {written[0]} notes written so far")
            assert took < 20, "backup must finish while writes go on"
        at_end = written[0]
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert at_end > 20, "the writer kept writing during the backups"
    for dest in dests:
        assert dest.exists() and not Path(str(dest) + ".partial").exists()
        counts = _check_copy(dest)
        assert 25 <= counts["sources"] <= 5 + written[0]
    with pytest.raises(UserInputError, match="already exists"):
        store.backup(dests[0])
    # A folder as destination gets a dated file inside it.
    (tmp_path / "into").mkdir()
    into = store.backup(tmp_path / "into")
    assert into.parent == tmp_path / "into" and into.suffix == ".db"


def test_ingest_notes_and_searches_at_once_never_lock(core, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(24):
        (docs / f"f{i:02d}.txt").write_text(f"Field report {i}: the river level rose {i} cm overnight.\n")
    core.store  # open before the threads start, as the app does
    core.remember(note("warm-up note so that an index exists"))
    errors: list[BaseException] = []
    results: dict[str, int] = {"notes": 0, "searches": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def guard(fn):
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        return run

    def ingest() -> None:
        s = core.indexer().index([docs])
        assert s.count("indexed") == 24, s.to_dict()

    def notes(who: int) -> None:
        for i in range(12):
            core.remember(note([f"note {who}-{i} about pottery glazes", f"and kiln temperature {i}"]))
            with lock:
                results["notes"] += 1

    def searches() -> None:
        searcher = core.searcher()
        while not stop.is_set():
            searcher.search("river level overnight", limit=5)
            core.store.stats()
            with lock:
                results["searches"] += 1

    workers = [threading.Thread(target=guard(ingest))] + \
              [threading.Thread(target=guard(lambda w=w: notes(w))) for w in range(2)]
    readers = [threading.Thread(target=guard(searches)) for _ in range(2)]
    for t in workers + readers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == [], [repr(e) for e in errors]
    assert results["notes"] == 24 and results["searches"] > 0
    conn = core.store.reader()
    assert scalar(conn, "SELECT count(*) FROM sources") == 1 + 24 + 24
    assert scalar(conn, "SELECT count(*) FROM chunks") == 1 + 24 + 48
    idx = core.store.active_index()
    assert scalar(conn, f"SELECT count(*) FROM {idx.float_table}") == 1 + 24 + 48
    assert core.store.integrity_check() == []


def test_a_second_process_store_waits_instead_of_failing(core, tmp_path: Path) -> None:
    """Two stores on one file (the tray app and a command): writes queue on SQLite's lock."""
    from deskmind.core.memory.store import MemoryStore

    core.store.put_source(note("first"))
    other = MemoryStore(core.paths.db_path)
    try:
        held = threading.Event()
        release = threading.Event()

        def hold_lock(conn) -> None:
            conn.execute("INSERT INTO sources(uri, kind, created_at, updated_at) VALUES ('x://held', 'note', 0, 0)")
            held.set()
            release.wait(5)

        f = core.store.writer.submit_transaction(hold_lock)
        held.wait(5)
        timer = threading.Timer(0.5, release.set)
        timer.start()
        sid = other.put_source(note("second"))
        f.result()
        assert sid and scalar(other.reader(), "SELECT count(*) FROM sources") == 3
    finally:
        other.close()


def test_searches_never_fail_while_indexes_are_swapped(core) -> None:
    """A search racing a re-embed's swap (which drops the old tables) must still answer."""
    from deskmind.core.memory.reembed import reembed

    emb = core.embedder()
    for i in range(10):
        core.remember(note(f"River gauge {i} reported a steady level."))
    qv = emb.embed_query("river level")
    searcher = core.searcher()
    stop = threading.Event()
    errors: list[str] = []
    done = [0]

    def search_loop(mode: str) -> None:
        while not stop.is_set():
            try:
                hits = searcher.search("river level", limit=3, mode=mode, query_vector=qv).hits
                assert len(hits) == 3
                done[0] += 1
            except BaseException as exc:  # noqa: BLE001
                errors.append(repr(exc))

    threads = [threading.Thread(target=search_loop, args=(m,)) for m in ("vector", "hybrid")]
    for t in threads:
        t.start()
    try:
        for _ in range(12):
            reembed(core.store, emb)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == [] and done[0] > 5


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count open files")
def test_threads_that_end_do_not_leak_database_connections(core) -> None:
    store = core.store
    dbfile = str(core.paths.db_path)

    def open_db_files() -> int:
        n = 0
        for fd in Path("/proc/self/fd").iterdir():
            try:
                n += os.readlink(fd).startswith(dbfile)
            except OSError:
                pass
        return n

    store.reader()
    before = open_db_files()
    for _ in range(20):
        t = threading.Thread(target=lambda: store.reader().execute("SELECT count(*) FROM sources").fetchone())
        t.start()
        t.join()
    store.reader()  # a new reader on this thread is not needed: the last one ended
    t = threading.Thread(target=store.reader)
    t.start()
    t.join()
    assert open_db_files() <= before + 3  # at most the last ended thread's connection
