"""Faults of a PostgreSQL memory met by the real ``deskmind`` command: a server that does not
answer, credentials it refuses, connections cut while a folder is indexed, a server too old or
without a recent pgvector. (The tray app's side is in tests/ui/test_memory_watch.py; the
in-process errors in test_runner.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from deskmind.core.errors import StorageError
from deskmind.core.memory.pg import migrations

from tests.cli.conftest import assert_one_line_error, run_deskmind

UNREACHABLE = "postgresql://ana@127.0.0.1:1/mind?connect_timeout=2"


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pg-faults-models")


def _env(home: Path, db: str, cache: Path | None = None) -> dict[str, str]:
    if cache is not None and not (home / "cache" / "models").exists():
        (home / "cache").mkdir(parents=True, exist_ok=True)
        (home / "cache" / "models").symlink_to(cache, target_is_directory=True)
    return {**os.environ, "DESKMIND_HOME": str(home), "DESKMIND_DB": db}


@pytest.mark.parametrize("args", [("search", "boat"), ("note", "--text", "moor at B"),
                                  ("sources",), ("store", "show")])
def test_an_unreachable_server_stops_every_command_without_a_local_file(deskmind_home, args):
    proc = run_deskmind(*args, env=_env(deskmind_home, UNREACHABLE), timeout=120)
    line = assert_one_line_error(proc, "127.0.0.1", "could not be reached",
                                 "does not fall back to a local file")
    assert line.startswith("deskmind: ")
    assert sorted(p.name for p in deskmind_home.rglob("*.db*")) == []  # no SQLite memory made


def test_refused_credentials_are_a_clear_error(pg_server, deskmind_home) -> None:
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        if "local all bob scram-sha-256" not in hba.read_text():
            hba.write_text("local all bob scram-sha-256\n" + hba.read_text())
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute("DROP ROLE IF EXISTS bob")
        conn.execute("CREATE ROLE bob LOGIN PASSWORD 'bobs-pw'")
        conn.execute("SELECT pg_reload_conf()")
    url = pg_server.url("postgres").replace("postgres@", "bob@", 1)
    # No password in the keyring for bob: the server asks for one and refuses.
    proc = run_deskmind("search", "boat", env=_env(deskmind_home, url), timeout=120)
    assert_one_line_error(proc, "refused the credentials", "deskmind store password", code=3)
    assert "bobs-pw" not in proc.stderr
    assert not (deskmind_home / "data" / "memory.db").exists()


def _per_source(url: str) -> dict[str, tuple[int, int, int]]:
    """``uri -> (document characters, chunks, vectors)`` of every source."""
    with psycopg.connect(url) as conn:
        idx = conn.execute("SELECT id FROM vector_indexes WHERE status = 'active'").fetchone()
        vec = (f"(SELECT count(*) FROM vectors_{idx[0]} v JOIN chunks c ON c.id = v.chunk_id "
               "WHERE c.source_id = s.id)") if idx else "0"
        return {r[0]: tuple(r[1:]) for r in conn.execute(
            "SELECT s.uri, coalesce(length(d.text), -1), "
            f"(SELECT count(*) FROM chunks c WHERE c.source_id = s.id), {vec} "
            "FROM sources s LEFT JOIN documents d ON d.source_id = s.id").fetchall()}


def test_connections_cut_mid_index_are_retried_and_no_source_is_half_written(
        pg_server, tmp_path, model_cache) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(30):
        paras = [f"Logbook {i}, entry {j}: wind {j + i} knots from the west, "
                 f"anchored off the {['north', 'south', 'east'][j % 3]} point, tide turning. " * 6
                 for j in range(4)]
        (folder / f"log{i:02}.md").write_text(f"# Log {i}\n\n" + "\n\n".join(paras))
    clean, cut = pg_server.new_database(), pg_server.new_database()
    try:
        # The same folder on an undisturbed database: what every source must look like.
        ref_home = tmp_path / "ref"
        proc = run_deskmind("index", str(folder), "--json",
                            env=_env(ref_home, pg_server.url(clean), model_cache), timeout=600)
        assert proc.returncode == 0, proc.stderr
        reference = _per_source(pg_server.url(clean))
        assert len(reference) == 30 and all(c > 0 and v == c for _d, c, v in reference.values())

        home = tmp_path / "cut"
        url = pg_server.url(cut)
        env = _env(home, url, model_cache)
        child = subprocess.Popen([sys.executable, "-m", "deskmind", "index", str(folder), "--json"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        killed: list[int] = []

        def cut_connections() -> None:
            with psycopg.connect(pg_server.url(cut), autocommit=True) as admin:
                mine = admin.info.backend_pid
                # Wait for the first sources, then cut every Deskmind connection a few times.
                while child.poll() is None and admin.execute(
                        "SELECT count(*) FROM sources").fetchone()[0] < 3:
                    time.sleep(0.05)
                for _ in range(4):
                    if child.poll() is not None:
                        break
                    killed.extend(r[0] for r in admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> %s "
                        "AND application_name = 'deskmind'", (mine,)).fetchall())
                    time.sleep(0.8)

        t = threading.Thread(target=cut_connections)
        t.start()
        out, err = child.communicate(timeout=600)
        t.join(30)
        assert any(killed), "no connection was cut while indexing ran"
        assert child.returncode == 0, err
        assert "lost the connection" in err and "trying again" in err
        summary = json.loads(out)
        assert summary["failed"] == 0 and summary["indexed"] == 30
        # Whole: every source stored has all its text, chunks and vectors.
        got = _per_source(url)
        assert got == reference
    finally:
        pg_server.drop_database(clean)
        pg_server.drop_database(cut)


class _ReportsVersion:
    """A real connection that reports another server version (as an old server would)."""

    def __init__(self, conn: psycopg.Connection, version: int) -> None:
        self._conn = conn
        self.info = type("Info", (), {"server_version": version})()

    def execute(self, *a, **kw):
        return self._conn.execute(*a, **kw)


def test_a_server_too_old_says_to_upgrade_it(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(StorageError, match=r"is version 12; Deskmind needs 13 or newer: upgrade"):
            migrations.check_server(_ReportsVersion(conn, 120015), "the test server")
        migrations.check_server(_ReportsVersion(conn, conn.info.server_version), "the test server")


def test_an_old_pgvector_says_how_to_update_it(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP VIEW pg_available_extensions AS SELECT 'vector'::name AS name, "
                     "'0.7.4'::text AS default_version, '0.7.4'::text AS installed_version")
        with pytest.raises(StorageError, match=r"pgvector 0\.7\.4; Deskmind needs 0\.8 or newer "
                                               r"\(ALTER EXTENSION vector UPDATE"):
            migrations.check_server(conn, "the test server")
