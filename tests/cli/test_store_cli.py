"""``deskmind store show`` and ``deskmind store password``, run as the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
    assert out["backend"] == "sqlite"
    assert out["url"] == f"sqlite://{deskmind_home / 'data' / 'memory.db'}"
    assert out["sources"] == 1 and out["chunks"] >= 1 and out["vectors"] == out["chunks"]
    proc = run_deskmind("store", "show")
    assert proc.stdout.splitlines()[0] == f"memory: {out['url']} (sqlite)"

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
