"""Bad input and faults: a specific one-line error, a non-zero exit, nothing stored is lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from deskmind.core.errors import StorageError
from deskmind.core.ingest.indexer import Indexer
from deskmind.core.memory import db
from deskmind.core.memory.store import MemoryStore

from tests.cli.conftest import assert_one_line_error, remount, run_deskmind, spawn_deskmind
from tests.core.memory.helpers import count, home_memory, query, rows, scalar, sqlite_only

LATIN1 = ("Le café crème du matin, à la terrasse près de la gare: une habitude très française. "
          "Après le déjeuner, on prend un thé à la menthe et on lit le journal.\n")


def db_of(home: Path) -> Path:
    return home / "data" / "memory.db"


def healthy(path: Path) -> None:
    conn = db.connect(path, readonly=True)
    try:
        assert rows(conn, "PRAGMA integrity_check") == [("ok",)]
    finally:
        conn.close()


def env_with_home(home: Path, shared_cache: Path | None = None) -> dict[str, str]:
    if shared_cache is not None:
        (home / "cache").mkdir(exist_ok=True)
        (home / "cache" / "models").symlink_to(shared_cache, target_is_directory=True)
    return {**os.environ, "DESKMIND_HOME": str(home)}


def error_lines(stderr: str) -> list[str]:
    """stderr without log records (a full disk also stops the model cache, and the indexer
    logs the file it could not store): the lines meant as the command's own error."""
    return [ln for ln in stderr.splitlines()
            if ln.strip() and not re.match(r"(WARNING|ERROR) deskmind[.\w]*: ", ln)]


def test_non_utf8_empty_and_binary_files(tmp_path: Path, deskmind_home: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.txt").write_text("Pack the tent, the stove and two litres of water.\n")
    (d / "latin1.txt").write_bytes(LATIN1.encode("latin-1"))
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.txt").write_bytes(b"\x00\x01\x02BIN\x00" * 100)
    proc = run_deskmind("index", str(d))
    assert proc.returncode == 0, proc.stderr  # good files were indexed
    assert "Traceback" not in proc.stderr
    assert proc.stdout.startswith("indexed 2, unchanged 0, skipped 1, failed 1")
    problems = sorted(ln for ln in proc.stderr.splitlines() if ln.strip())
    assert len(problems) == 2, proc.stderr
    assert problems[0].startswith(f"deskmind: could not index {d / 'binary.txt'}: ")
    assert "binary" in problems[0]
    assert problems[1].startswith(f"deskmind: skipped {d / 'empty.txt'}: empty file")
    with home_memory(deskmind_home) as store:
        status = dict(query(store, "SELECT uri, status FROM sources"))
        assert status == {str(d / "good.txt"): "indexed", str(d / "latin1.txt"): "indexed",
                          str(d / "empty.txt"): "skipped", str(d / "binary.txt"): "failed"}
        # Latin-1 is decoded, not rejected and not mangled.
        assert store.document_text(store.source_id_by_uri(str(d / "latin1.txt"))) == LATIN1
    hits = json.loads(run_deskmind("search", "café crème terrasse", "--json", "--mode", "fts").stdout)
    assert hits[0]["source"] == str(d / "latin1.txt") and "café crème" in hits[0]["text"]


def _unreadable_prefix(path: Path) -> tuple[str, ...]:
    """How to run a command for which ``path`` (mode 000) really cannot be read.

    Root reads any file, so as root the command runs without the capabilities that bypass
    file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH); it stays uid 0 and so still
    owns the test's folders.
    """
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        drop = "-dac_override,-dac_read_search"
        prefix = ("setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}")
    probe = subprocess.run([*prefix, "cat", str(path)], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("this system lets the test process read a mode-000 file")
    return prefix


def test_unreadable_file(tmp_path: Path, deskmind_home: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("The spare key is with the neighbour at number twelve.\n")
    assert run_deskmind("index", str(good)).returncode == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("unreachable words\n")
    secret.chmod(0)
    prefix = _unreadable_prefix(secret)
    proc = run_deskmind("index", str(secret), prefix=prefix)
    assert_one_line_error(proc, f"could not index {secret}: permission denied", code=1)
    with home_memory(deskmind_home) as store:
        assert dict(query(store, "SELECT uri, status FROM sources")) == {
            str(good): "indexed", str(secret): "failed"}
        assert count(store, "SELECT count(*) FROM chunks") == 1


def test_a_file_that_is_not_a_database(tmp_path: Path, deskmind_home: Path, monkeypatch) -> None:
    sqlite_only(monkeypatch)
    dbfile = db_of(deskmind_home)
    dbfile.parent.mkdir(parents=True)
    junk = b"My diary. Day one: it rained.\n" * 300
    dbfile.write_bytes(junk)
    (tmp_path / "a.txt").write_text("some text\n")
    for args in (("search", "rain"), ("index", str(tmp_path / "a.txt")), ("stats", "--json")):
        proc = run_deskmind(*args)
        assert_one_line_error(proc, str(dbfile), "is not a Deskmind memory database", code=3)
    assert dbfile.read_bytes() == junk
    assert sorted(p.name for p in dbfile.parent.iterdir()) == ["memory.db"]


def test_a_read_only_data_folder(tmpfs, tmp_path: Path, shared_model_cache: Path, monkeypatch) -> None:
    sqlite_only(monkeypatch)
    home = tmpfs("home", size="8m")
    env = env_with_home(home, shared_model_cache)
    first = tmp_path / "first.txt"
    first.write_text("The boiler was serviced in October; next service due in a year.\n")
    proc = run_deskmind("index", str(first), env=env)
    assert proc.returncode == 0, proc.stderr
    remount(home, "ro")
    try:
        later = tmp_path / "later.txt"
        later.write_text("A later file that cannot be stored.\n")
        proc = run_deskmind("index", str(later), env=env)
        line = assert_one_line_error(proc, code=3)
        assert "not writable" in line or "read-only" in line, line
        assert str(home) in line
        # Reading may work or fail, but never with a traceback.
        proc = run_deskmind("search", "boiler service", "--json", env=env)
        if proc.returncode == 0:
            assert json.loads(proc.stdout)[0]["source"] == str(first)
        else:
            assert_one_line_error(proc)
    finally:
        remount(home, "rw")
    healthy(db_of(home))
    with MemoryStore(db_of(home), machine=home / "data") as store:
        assert [s.uri for s in store.list_sources()] == [str(first)]
        assert store.get_source(store.resolve(str(first))[0]).chunk_count == 1


def _fill(folder: Path, leave: int) -> Path:
    ballast = folder / "ballast"
    st = os.statvfs(folder)
    with open(ballast, "wb") as fh:
        fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return ballast


@pytest.mark.parametrize("room_kb", [16, 160], ids=["no-room-to-open", "full-while-storing"])
def test_a_full_disk(tmpfs, tmp_path: Path, room_kb: int, shared_model_cache: Path, monkeypatch) -> None:
    sqlite_only(monkeypatch)
    home = tmpfs("home", size="6m")
    # With no room at all, the model cache on the same disk cannot be written either.
    env = env_with_home(home, None if room_kb < 64 else shared_model_cache)
    early = tmp_path / "early"
    early.mkdir()
    for i in range(3):
        (early / f"e{i}.txt").write_text(f"Early file {i}: the allotment needs compost and {i} stakes.\n")
    proc = run_deskmind("index", str(early), env=env)
    assert proc.returncode == 0, proc.stderr
    ballast = _fill(home, room_kb * 1024)
    late = tmp_path / "late"
    late.mkdir()
    for i in range(16):
        (late / f"l{i:02d}.txt").write_text(f"Late file {i}: gooseberries, {i} rows of leeks.\n" * 8)
    proc = run_deskmind("index", str(late), env=env)
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "is full" in lines[0] and "free some space" in lines[0], proc.stderr
    if room_kb >= 64:  # the database opened, and a write transaction hit the wall
        assert "nothing was changed by this step" in lines[0]
    ballast.unlink()  # room again: reading a WAL database needs room for its -shm file
    healthy(db_of(home))
    with MemoryStore(db_of(home), machine=home / "data") as store:
        for i in range(3):
            src = store.get_source(store.resolve(str(early / f"e{i}.txt"))[0])
            assert src.status == "indexed" and src.chunk_count == 1
        assert store.integrity_check() == []
    # The same command now finishes the job.
    proc = run_deskmind("index", str(late), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    with MemoryStore(db_of(home), machine=home / "data") as store:
        assert store.stats()["sources_by_status"] == {"indexed": 19}
        assert store.stats()["vector_index"]["vectors"] == store.stats()["chunks"]


def _corpus(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        sub = root / f"d{i % 6}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i:03d}.txt").write_text(
            f"Generated file {i}. The weather station {i % 13} logged {i * 7 % 101} mm of rain.\n")
    return root


CHUNK_TABLE = ("SELECT s.uri, c.ord, c.text_hash FROM chunks c "
               "JOIN sources s ON s.id = c.source_id ORDER BY s.uri, c.ord")


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_sigkill_during_indexing_then_rerun(tmp_path: Path, deskmind_home: Path) -> None:
    """On either backend: a killed indexer leaves whole sources only, and a rerun finishes."""
    corpus = _corpus(tmp_path / "corpus", 240)
    dbfile = db_of(deskmind_home)
    proc = spawn_deskmind("index", str(corpus), "--json")
    killed_at = None
    on_file = not os.environ.get("DESKMIND_DB")
    watcher = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            n = 0
            if on_file and dbfile.exists():
                conn = db.connect(dbfile, readonly=True)
                try:
                    n = scalar(conn, "SELECT count(*) FROM sources") if scalar(
                        conn, "SELECT count(*) FROM sqlite_master WHERE name = 'sources'") else 0
                finally:
                    conn.close()
            elif not on_file:
                watcher = watcher or home_memory(deskmind_home)
                n = count(watcher, "SELECT count(*) FROM sources")
            if n > 0:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = n
                break
            time.sleep(0.02)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if watcher is not None:
            watcher.close()
    assert proc.returncode == -signal.SIGKILL and killed_at, "indexing should have been killed midway"
    with home_memory(deskmind_home) as store:
        assert store.integrity_check() == []
        stored = count(store, "SELECT count(*) FROM sources WHERE status = 'indexed'")
        assert 0 < stored < 240

    proc = run_deskmind("index", str(corpus), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["unchanged"] == stored and summary["indexed"] == 240 - stored
    assert summary["failed"] == summary["skipped"] == 0

    # The same as a clean run: one set of chunks per file, none twice.
    with home_memory(deskmind_home) as store:
        assert store.integrity_check() == []
        got = query(store, CHUNK_TABLE)
        assert len(got) == len(set((u, o) for u, o, _ in got)) == len(set(got))
        s = store.stats()
        assert s["sources_by_status"] == {"indexed": 240}
        assert s["vector_index"]["vectors"] == s["chunks"] == len(got)
    with MemoryStore(tmp_path / "clean.db") as clean:
        Indexer(clean, None).index([corpus])  # text only: the chunks are what is compared
        want = query(clean, CHUNK_TABLE)
    # The same order on both engines: uris compared byte by byte.
    assert sorted(got) == sorted(want)


def test_a_database_damaged_inside(tmp_path: Path, deskmind_home: Path, monkeypatch) -> None:
    """Damage found only when a query reaches it: still one line, never a traceback."""
    sqlite_only(monkeypatch)
    from deskmind.core.app import Core
    from tests.core.memory.helpers import note

    with Core() as core:
        for i in range(40):
            core.store.put_source(note([f"Tide table {i}: high water at {i % 12}:{i % 60:02d}."] * 3,
                                       uri=f"deskmind://note/tide-{i}"))
    dbfile = db_of(deskmind_home)
    conn = db.connect(dbfile)
    roots = dict(rows(conn, "SELECT name, rootpage FROM sqlite_master WHERE name IN ('chunks', 'chunks_fts_data')"))
    page = scalar(conn, "PRAGMA page_size")
    conn.close()
    with open(dbfile, "r+b") as fh:  # the header and the schema stay intact
        for root in roots.values():
            fh.seek((root - 1) * page)
            fh.write(os.urandom(page))
    new = tmp_path / "new.txt"
    new.write_text("A new file to store in the damaged database.\n")
    for args in (("search", "tide table", "--mode", "fts"), ("forget", "deskmind://note/tide-3")):
        proc = run_deskmind(*args)
        line = assert_one_line_error(proc, code=3)
        assert "malformed" in line and "deskmind doctor" in line, line
    # The indexer reports the file it could not store (and goes on with others).
    proc = run_deskmind("index", str(new))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    mine = [ln for ln in proc.stderr.splitlines() if ln.startswith("deskmind: ")]
    assert len(mine) == 1 and mine[0].startswith(f"deskmind: could not index {new}: ")
    assert "is damaged (database disk image is malformed)" in mine[0]
    try:  # the store's own check (what 'deskmind doctor' runs) sees the damage too
        with MemoryStore(dbfile) as store:
            problems = store.integrity_check()
    except StorageError as exc:
        problems = [str(exc)]
    assert problems
