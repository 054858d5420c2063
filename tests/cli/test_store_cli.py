"""``deskmind store show`` and ``deskmind store password``, run as the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.cli.conftest import assert_one_line_error, run_deskmind
from tests.fakes.keyring import have_secret_service, run_with_secret_service

SECRET = "hunter2-db-secret"


def test_store_show_names_the_location_backend_and_counts(deskmind_home, tmp_path):
    note = tmp_path / "tide.md"
    note.write_text("# Tides\n\nThe tide table for the harbour.\n")
    assert run_deskmind("index", str(note), "--no-progress").returncode == 0
    proc = run_deskmind("store", "show", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sources"] == 1 and out["chunks"] >= 1 and out["vectors"] == out["chunks"]
    assert out["bytes"] > 0
    text = run_deskmind("store", "show").stdout.splitlines()
    pg_url = os.environ.get("DESKMIND_DB")
    if pg_url:
        # Where the server is, which database and versions; the URL as given (no password).
        assert (out["backend"], out["url"]) == ("postgres", pg_url)
        assert out["database"] == urlsplit(pg_url).path.lstrip("/")
        assert out["server"].endswith(":5432") and out["user"] == "postgres"
        assert out["pgvector"].startswith("0.") and 0 < out["memory_bytes"] <= out["bytes"]
        assert text[0] == f"memory: {pg_url} (postgres)"
        assert text[1] == (f"server: {out['server']}  database: {out['database']}  user: postgres  "
                           f"PostgreSQL {out['server_version']}, pgvector {out['pgvector']}")
    else:
        assert out["backend"] == "sqlite"
        assert out["url"] == f"sqlite://{deskmind_home / 'data' / 'memory.db'}"
        assert text[0] == f"memory: {out['url']} (sqlite)"
    assert text[-1] == f"sources: 1  chunks: {out['chunks']}  vectors: {out['vectors']}"
    assert text[-2] == f"this machine: {out['machine']['name']} (id {out['machine']['id']})"
    assert out["other_machines"] == []

    elsewhere = tmp_path / "other.db"
    proc = run_deskmind("store", "show", env={**os.environ, "DESKMIND_DB": str(elsewhere)})
    assert proc.returncode == 0 and f"memory: sqlite://{elsewhere} (sqlite)" in proc.stdout
    assert "sources: 0" in proc.stdout


def test_a_password_in_DESKMIND_DB_is_refused_and_never_shown():
    env = {**os.environ, "DESKMIND_DB": f"postgresql://ana:{SECRET}@db.home/deskmind"}
    for args in (("store", "show"), ("stats",), ("search", "tide")):
        proc = run_deskmind(*args, env=env)
        line = assert_one_line_error(proc, "holds a password", "deskmind store password", code=2)
        assert SECRET not in proc.stdout + proc.stderr, line


def test_store_password_refuses_what_it_cannot_keep():
    proc = run_deskmind("store", "password", f"postgresql://ana:{SECRET}@db/x", "--stdin")
    assert_one_line_error(proc, "holds a password", code=2)
    assert SECRET not in proc.stderr
    proc = run_deskmind("store", "password", "/home/ana/memory.db", "--stdin")
    assert_one_line_error(proc, "needs no password", code=2)
    # tests/conftest.py pins the null keyring: there is nowhere safe to keep it
    proc = subprocess.run([sys.executable, "-m", "deskmind", "store", "password",
                           "postgresql://ana@db/x", "--stdin"], input=SECRET + "\n",
                          capture_output=True, text=True, timeout=60)
    assert_one_line_error(proc, "no OS keyring", code=6)
    assert SECRET not in proc.stderr


@pytest.mark.skipif(not have_secret_service(),
                    reason="needs dbus-run-session, gnome-keyring-daemon and secret-tool")
def test_store_password_goes_to_a_real_secret_service(tmp_path):
    home = tmp_path / "dm"
    out = run_with_secret_service(
        f"printf '{SECRET}\\n' | {sys.executable} -m deskmind store password "
        "'postgresql://ana@db.home:5433/deskmind?sslmode=require' --stdin\n"
        "secret-tool lookup service deskmind username 'db:ana@db.home:5433/deskmind'; echo\n",
        tmp_path, home)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == ("stored the password for db:ana@db.home:5433/deskmind in "
                        "keyring.backends.SecretService.Keyring")
    assert lines[1] == SECRET
    for p in home.rglob("*") if home.exists() else []:
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes()


def test_store_optimize_gives_back_space_and_keeps_what_remains(deskmind_home, tmp_path, on_both_backends):
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(12):
        (folder / f"n{i}.md").write_text(f"# Note {i}\n\n" + f"Harbour log {i}: the tide turned. " * 40)
    assert run_deskmind("index", str(folder), "--no-progress").returncode == 0
    assert run_deskmind("forget", *(str(folder / f"n{i}.md") for i in range(1, 12))).returncode == 0
    proc = run_deskmind("store", "optimize", "--reindex", "--json")
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    assert done["vacuumed"] and done["reindexed"] and done["failed"] == []
    if done["backend"] == "sqlite":  # VACUUM rewrites the file without the forgotten pages
        assert 0 < done["bytes_after"] < done["bytes_before"]
    else:  # VACUUM marks their space for reuse (VACUUM FULL would lock out other machines)
        assert done["bytes_after"] > 0 and "chunks" in done["vacuumed"]
    proc = run_deskmind("store", "optimize")
    assert proc.returncode == 0 and proc.stdout.startswith("optimized in "), proc.stderr
    hits = json.loads(run_deskmind("search", "harbour tide", "--json").stdout)
    assert {h["source"] for h in hits} == {str(folder / "n0.md")}
    doctor = run_deskmind("doctor", "--json")
    db_check = [c for c in json.loads(doctor.stdout) if c["check"] == "memory database"]
    assert db_check[0]["ok"], db_check
