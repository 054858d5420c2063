"""Backups of a PostgreSQL memory: a real pg_dump, restored by a real pg_restore into a fresh
database that then holds and finds the same; and what is said when pg_dump cannot be used."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pgserver
import pytest

from deskmind.core.errors import StorageError, UserInputError
from deskmind.core.memory.backend import open_memory
from deskmind.core.memory.pg import backup

from ..memory_fill import assert_same_memory, fake_vectors, fill

PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"


def _server_major(store) -> int:
    return int(store.sql.query_one("SHOW server_version_num")[0]) // 10000


def _fake_pg_dump(folder: Path, version: str, body: str = "") -> Path:
    """A pg_dump stand-in (a real program) that reports ``version`` and runs ``body``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) {version}"; exit 0; fi\n'
        + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_backup_restored_into_a_new_database_holds_and_finds_the_same(
        pg_server, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backup.BIN_ENV, str(PG_BIN))
    store = open_memory(pg_url)
    restored_name = pg_server.new_database(migrated=False)
    restored = None
    try:
        fill(store)
        dest = store.backup(tmp_path)  # a folder: a dated file inside it
        assert dest.parent == tmp_path and dest.suffix == ".dump" and dest.stat().st_size > 0
        assert [p.name for p in tmp_path.iterdir()] == [dest.name]  # no .partial left
        with pytest.raises(UserInputError, match="already exists"):
            store.backup(dest)

        url = pg_server.url(restored_name)
        proc = subprocess.run([str(PG_BIN / "pg_restore"), "--no-owner", "--exit-on-error",
                               f"--dbname={url}", str(dest)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        restored = open_memory(url)
        assert restored.stats()["migrations"] == store.stats()["migrations"]
        assert_same_memory(store, restored)
        assert restored.integrity_check() == []
        for question in ("kayak campsite", "heat pump rattling", "dentist appointment"):
            q = fake_vectors([question], 16)[0]
            for mode in ("fts", "vector", "hybrid"):
                a = store.searcher(None).search(question, limit=5, mode=mode, query_vector=q).hits
                b = restored.searcher(None).search(question, limit=5, mode=mode, query_vector=q).hits
                assert a and [(h.chunk_id, h.text, h.score) for h in a] == \
                    [(h.chunk_id, h.text, h.score) for h in b]
    finally:
        store.close()
        if restored is not None:
            restored.close()
        pg_server.drop_database(restored_name)


def test_no_pg_dump_says_what_to_install(pg_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StorageError) as err:
        backup.pg_dump(pg_url, None, tmp_path / "m.dump", server_major=17,
                       environ={"PATH": str(empty)}, debian_bins=str(tmp_path / "none"))
    text = str(err.value)
    assert "pg_dump was not found" in text and "apt install postgresql-client-17" in text
    assert backup.BIN_ENV in text
    assert not (tmp_path / "m.dump").exists()


def test_a_pg_dump_older_than_the_server_is_not_used(pg_url: str, tmp_path: Path) -> None:
    old = _fake_pg_dump(tmp_path / "old", "12.3", "echo ran >> \"$0.ran\"\n")
    store = open_memory(pg_url)
    try:
        major = _server_major(store)
    finally:
        store.close()
    with pytest.raises(StorageError) as err:
        backup.pg_dump(pg_url, None, tmp_path / "m.dump", server_major=major,
                       environ={backup.BIN_ENV: str(old.parent), "PATH": ""},
                       debian_bins=str(tmp_path / "none"))
    text = str(err.value)
    assert f"{old} is 12" in text and f"PostgreSQL {major}" in text
    assert f"postgresql-client-{major}" in text
    assert not Path(f"{old}.ran").exists()  # never run for a dump
    # With the right one beside it, the right one is chosen (the server's own major first).
    newer = _fake_pg_dump(tmp_path / "newer", f"{major + 1}.0")
    same = _fake_pg_dump(tmp_path / "same", f"{major}.2")
    env = {backup.BIN_ENV: str(newer.parent), "PATH": f"{same.parent}:{old.parent}"}
    assert backup.find_tool("pg_dump", major, env, debian_bins=str(tmp_path / "none")) == \
        backup.Tool(str(same), major)
    env = {backup.BIN_ENV: str(newer.parent), "PATH": str(old.parent)}
    assert backup.find_tool("pg_dump", major, env, debian_bins=str(tmp_path / "none")) == \
        backup.Tool(str(newer), major + 1)


def test_the_password_goes_through_the_environment_never_the_command_line(tmp_path: Path) -> None:
    record = tmp_path / "record"
    body = (f'printf "%s\\n" "$@" > {record}.args\n'
            f'printf "%s" "$PGPASSWORD" > {record}.env\n'
            'for a in "$@"; do case "$a" in --file=*) echo dump > "${a#--file=}";; esac; done\n')
    tool = _fake_pg_dump(tmp_path / "bin", "16.4", body)
    url = "postgresql://ana@db.home:5432/deskmind?sslmode=require"
    env = {backup.BIN_ENV: str(tool.parent), "PATH": "", "PGPASSWORD": "stale"}
    dest = backup.pg_dump(url, "s3cr3t-pw", tmp_path / "m.dump", server_major=16, environ=env,
                          debian_bins=str(tmp_path / "none"))
    assert dest.read_text() == "dump\n"
    args = Path(f"{record}.args").read_text().splitlines()
    assert "s3cr3t-pw" not in " ".join(args)
    assert args[:2] == ["--format=custom", "--no-password"] and f"--dbname={url}" in args
    assert Path(f"{record}.env").read_text() == "s3cr3t-pw"

    # A failing pg_dump: its reason is passed on with the password masked, nothing is left.
    failing = _fake_pg_dump(tmp_path / "failing", "16.4",
                            'echo "pg_dump: error: connection failed: password s3cr3t-pw rejected" >&2\n'
                            'exit 1\n')
    with pytest.raises(StorageError) as err:
        backup.pg_dump(url, "s3cr3t-pw", tmp_path / "n.dump", server_major=16,
                       environ={backup.BIN_ENV: str(failing.parent), "PATH": ""},
                       debian_bins=str(tmp_path / "none"))
    assert "connection failed: password *** rejected" in str(err.value)
    assert "s3cr3t-pw" not in str(err.value)
    assert not list(tmp_path.glob("n.dump*"))


def test_deskmind_backup_on_postgres(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DESKMIND_DB": pg_url, backup.BIN_ENV: str(PG_BIN)}
    store = open_memory(pg_url)
    try:
        fill(store)
    finally:
        store.close()
    dest = tmp_path / "memory.dump"
    proc = subprocess.run([sys.executable, "-m", "deskmind", "backup", str(dest)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"backup written: {dest} (")
    assert lines[1].startswith("restore it into a new, empty database with: pg_restore --no-owner")
    listing = subprocess.run([str(PG_BIN / "pg_restore"), "--list", str(dest)],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "TABLE DATA public chunks" in listing.stdout

    env[backup.BIN_ENV] = str(tmp_path / "nowhere")
    env["PATH"] = str(tmp_path / "nowhere")
    proc = subprocess.run([sys.executable, "-m", "deskmind", "backup", str(tmp_path / "again.dump")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "pg_dump" in proc.stderr and "apt install postgresql-client-" in proc.stderr
