"""``deskmind store copy``, run as the real command: killed with SIGKILL in the middle of a
copy into PostgreSQL, then resumed to the end and verified; copied back into a SQLite file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deskmind.core.memory.backend import open_memory
from deskmind.core.memory.store import MemoryStore
from tests.cli.conftest import assert_one_line_error, run_deskmind
from tests.core.memory.helpers import sqlite_only
from tests.core.memory.memory_fill import assert_same_memory, fill


def _local_memory(home: Path, extra_notes: int) -> tuple[Path, dict[str, int]]:
    db = home / "data" / "memory.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    with MemoryStore(db) as store:
        fill(store, extra_notes=extra_notes)
        counts = {t: store.sql.query_one(f"SELECT count(*) FROM {t}")[0]
                  for t in ("sources", "chunks")}
    return db, counts


def test_a_copy_killed_midway_resumes_and_verifies(deskmind_home: Path, pg_url: str,
                                                   monkeypatch) -> None:
    sqlite_only(monkeypatch)  # a copy from the data folder's SQLite file
    db, counts = _local_memory(deskmind_home, extra_notes=300)
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskmind", "store", "copy", "--to", pg_url, "--batch", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = open_memory(pg_url)
    try:
        deadline = time.monotonic() + 120
        copied = 0
        while time.monotonic() < deadline and proc.poll() is None:
            row = target.sql.query_one("SELECT copied FROM copy_progress WHERE step = 'chunks'")
            copied = row[0] if row else 0
            if copied >= 60:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the copy ended before it could be stopped"
        landed = target.sql.query_one("SELECT count(*) FROM chunks")[0]
        assert 60 <= landed < counts["chunks"]
        # The checkpoint and the rows agree: each batch landed with its checkpoint or not at all.
        assert target.sql.query_one(
            "SELECT copied FROM copy_progress WHERE step = 'chunks'")[0] == landed
        assert target.sql.query_one("SELECT done FROM copy_progress WHERE step = 'run'")[0] == 0

        again = run_deskmind("store", "copy", "--to", pg_url)
        assert_one_line_error(again, "unfinished copy", "--resume", code=2)
        shown = run_deskmind("store", "show", env={**os.environ, "DESKMIND_DB": pg_url})
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[-1] == (
            f"unfinished copy of sqlite://{db}: run 'deskmind store copy --from sqlite://{db} "
            f"--to {pg_url} --resume' to finish it")

        done = run_deskmind("store", "copy", "--to", pg_url, "--resume", "--batch", "50")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith(f"copied sqlite://{db} -> postgresql://") and "(resumed)" in lines[0]
        assert f"chunks {counts['chunks']}" in lines[1] and f"sources {counts['sources']}" in lines[1]
        assert lines[3] == "verified: every count matches; 8/8 sample searches gave the same top hit on both sides"
        # Progress went to stderr, starting from the checkpoint, not from zero.
        chunk_lines = [ln for ln in done.stderr.splitlines() if ln.startswith("chunks: ")]
        assert chunk_lines[0] == f"chunks: {landed}/{counts['chunks']}", done.stderr
        with MemoryStore(db) as local:
            assert_same_memory(local, target)
        shown = run_deskmind("store", "show", "--json", env={**os.environ, "DESKMIND_DB": pg_url})
        copied = json.loads(shown.stdout)["copied_from"]
        assert copied["source"] == f"sqlite://{db}" and copied["finished"] is True
    finally:
        target.close()


def test_copy_back_from_postgres_into_a_new_sqlite_file(deskmind_home: Path, pg_url: str,
                                                        tmp_path: Path, monkeypatch) -> None:
    sqlite_only(monkeypatch)  # from the data folder's SQLite file, and back into a new one
    db, counts = _local_memory(deskmind_home, extra_notes=5)
    there = run_deskmind("store", "copy", "--to", pg_url, "--json")
    assert there.returncode == 0, there.stderr
    receipt = json.loads(there.stdout)
    assert receipt["tables"]["chunks"] == counts["chunks"] and not receipt["resumed"]

    # Into the current location, which already holds this memory: refused, nothing changed.
    refused = run_deskmind("store", "copy", "--from", pg_url)
    assert_one_line_error(refused, "already holds a memory", "Nothing was changed", code=2)

    fresh = tmp_path / "laptop.db"
    back = run_deskmind("store", "copy", "--from", pg_url,
                        env={**os.environ, "DESKMIND_DB": str(fresh)})
    assert back.returncode == 0, back.stderr
    assert f"-> sqlite://{fresh}" in back.stdout.splitlines()[0]
    with MemoryStore(db) as local, MemoryStore(fresh) as copied:
        assert_same_memory(local, copied)
    shown = run_deskmind("search", "kayak campsite", "--mode", "fts", "--json",
                         env={**os.environ, "DESKMIND_DB": str(fresh)})
    assert shown.returncode == 0, shown.stderr
    assert "Beynac" in shown.stdout


def test_copy_says_what_it_needs() -> None:
    proc = run_deskmind("store", "copy")
    assert_one_line_error(proc, "--to URL", "--from URL", code=2)
    proc = run_deskmind("store", "copy", "--to", "/tmp/x.db", "--batch", "0")
    assert_one_line_error(proc, "--batch must be between 1 and 100000", code=2)
    proc = run_deskmind("store", "copy", "--to", "mysql://me@db/x")
    assert_one_line_error(proc, "not 'mysql'", code=2)


def test_ctrl_c_stops_a_copy_that_then_resumes(deskmind_home: Path, pg_url: str) -> None:
    db, counts = _local_memory(deskmind_home, extra_notes=300)
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskmind", "store", "copy", "--to", pg_url, "--batch", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = open_memory(pg_url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            row = target.sql.query_one("SELECT copied FROM copy_progress WHERE step = 'chunks'")
            if row and row[0] >= 40:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert err.splitlines()[-1] == (
            "deskmind: copy stopped; the batches copied so far are kept: run the same command "
            "with --resume to go on from there")
        assert "Traceback" not in err
        landed = target.sql.query_one("SELECT count(*) FROM chunks")[0]
        assert 40 <= landed < counts["chunks"]
        done = run_deskmind("store", "copy", "--to", pg_url, "--resume", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["resumed"] is True
        with MemoryStore(db) as local:
            assert_same_memory(local, target)
    finally:
        target.close()
