"""The PostgreSQL runner and migrations against a real server: transactions, retries, several
writers at once, and the errors people see."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from deskmind.core.errors import StorageError
from deskmind.core.memory.pg import migrations
from deskmind.core.memory.pg.runner import PgRunner, to_pg
from deskmind.core.memory.pg.store import PgMemoryStore

from tests.core.memory.helpers import note


@pytest.fixture
def runner(pg_url: str):
    r = PgRunner(pg_url, max_size=4)
    yield r
    r.close()


def test_placeholders_become_psycopg_ones() -> None:
    assert to_pg("SELECT ? , ?") == "SELECT %s , %s"
    assert to_pg("SELECT 1") == "SELECT 1"


def test_a_password_never_appears_in_an_error(tmp_path) -> None:
    with pytest.raises(StorageError) as err:
        PgMemoryStore(f"postgresql://ann@/mind?host={tmp_path}", password="s3cret-pw",
                      connect_timeout=2)
    assert "s3cret-pw" not in str(err.value) and "ann@" in str(err.value)


def test_credentials_right_and_wrong(pg_server) -> None:
    """A role the server checks by password (scram): the password given gets in, a wrong
    one is a clear error that names neither password."""
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        if "local all ann scram-sha-256" not in hba.read_text():
            hba.write_text("local all ann scram-sha-256\n" + hba.read_text())
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute("DROP ROLE IF EXISTS ann")
        conn.execute("CREATE ROLE ann LOGIN SUPERUSER PASSWORD 'right-pw'")
        conn.execute("SELECT pg_reload_conf()")
    name = pg_server.new_database()
    url = pg_server.url(name).replace("postgres@", "ann@", 1)
    try:
        with pytest.raises(StorageError) as err:
            PgMemoryStore(url, password="wrong-pw", connect_timeout=3)
        assert "refused the credentials" in str(err.value)
        assert "deskmind store password" in str(err.value)
        assert "wrong-pw" not in str(err.value) and "right-pw" not in str(err.value)
        store = PgMemoryStore(url, password="right-pw")
        assert store.sql.query_one("SELECT current_user") == ("ann",)
        store.close()
    finally:
        pg_server.drop_database(name)


def test_a_failed_write_leaves_nothing(runner: PgRunner) -> None:
    def bad(tx):
        tx.execute("INSERT INTO collections(name, kind, root, created_at) VALUES (?, ?, ?, ?)",
                   ("c", "folder", "/r", 1.0))
        raise ValueError("stop here")

    with pytest.raises(ValueError):
        runner.write(bad)
    assert runner.query("SELECT name FROM collections") == []


def test_a_write_whose_connection_drops_runs_again_once(runner: PgRunner) -> None:
    attempts = []

    def flaky(tx):
        attempts.append(1)
        tx.execute("INSERT INTO collections(name, kind, root, created_at) VALUES (?, ?, ?, ?)",
                   ("c", "folder", "/r", 1.0))
        if len(attempts) == 1:
            # The server ends this very connection mid-transaction (a restart, a network cut).
            tx.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return "done"

    assert runner.write(flaky) == "done"
    assert len(attempts) == 2
    assert runner.query("SELECT name FROM collections") == [("c",)]


def test_a_statement_error_is_not_retried(runner: PgRunner) -> None:
    attempts = []

    def wrong(tx):
        attempts.append(1)
        tx.execute("SELECT * FROM no_such_table")

    with pytest.raises(psycopg.errors.UndefinedTable):
        runner.write(wrong)
    assert len(attempts) == 1


def test_submit_runs_later_in_its_own_transaction(runner: PgRunner) -> None:
    fut = runner.submit(lambda tx: tx.execute(
        "INSERT INTO agent_audit(at, agent, tool, args_summary, decision) VALUES (?, ?, ?, ?, ?) "
        "RETURNING id", (1.0, "a", "t", "", "allowed")).fetchone()[0])
    assert fut.result(timeout=10) >= 1
    assert runner.query_one("SELECT count(*) FROM agent_audit") == (1,)


def test_several_writers_at_once_on_one_database(pg_url: str) -> None:
    """Two stores (two machines) and several threads each store sources at the same time,
    some under the same uri: every write lands, and one uri stays one source."""
    stores = [PgMemoryStore(pg_url, pool_size=3), PgMemoryStore(pg_url, pool_size=3)]
    errors: list[BaseException] = []

    def work(store: PgMemoryStore, worker: int) -> None:
        try:
            for i in range(15):
                store.put_source(note([f"worker {worker} note {i}"], uri=f"deskmind://note/{worker}-{i}"))
                store.put_source(note([f"shared by all, last from {worker}"], uri="deskmind://note/shared"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(stores[w % 2], w)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        uris = [s.uri for s in stores[0].list_sources()]
        assert len(uris) == 4 * 15 + 1 and uris.count("deskmind://note/shared") == 1
        shared = stores[1].get_source(stores[1].resolve("deskmind://note/shared")[0])
        assert shared.chunk_count == 1
    finally:
        for s in stores:
            s.close()


def test_an_unreachable_server_is_a_clear_error(tmp_path) -> None:
    url = f"postgresql://postgres@/mind?host={tmp_path}"
    with pytest.raises(StorageError) as err:
        PgMemoryStore(url, connect_timeout=2)
    msg = str(err.value)
    assert "could not be reached" in msg and "does not fall back to a local file" in msg
    assert str(tmp_path) in msg


def test_a_missing_database_says_so(pg_server) -> None:
    with pytest.raises(StorageError, match="has no such database"):
        PgMemoryStore(pg_server.url("no_such_db"), connect_timeout=2)


def test_a_database_from_a_newer_deskmind_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations(name, applied_at) VALUES ('m999_future', 0)")
    with pytest.raises(StorageError, match="newer Deskmind"):
        PgMemoryStore(pg_url)


def test_migrations_run_once_each_on_a_new_database(pg_server) -> None:
    name = pg_server.new_database(migrated=False)
    url = pg_server.url(name)
    try:
        errors: list[BaseException] = []
        opened: list[PgMemoryStore] = []

        def open_one() -> None:
            try:
                opened.append(PgMemoryStore(url))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [] and len(opened) == 3
        with psycopg.connect(url) as conn:
            assert migrations.applied(conn) == [n for n, _ in migrations.MIGRATIONS]
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        for s in opened:
            s.close()
    finally:
        pg_server.drop_database(name)


def test_a_server_without_pgvector_says_how_to_install_it(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        # What the check reads, as a server without the extension's files answers it.
        conn.execute("CREATE TEMP VIEW pg_available_extensions AS SELECT name, default_version, "
                     "installed_version FROM pg_catalog.pg_available_extensions WHERE false")
        with pytest.raises(StorageError, match="no pgvector extension: install it"):
            migrations.check_server(conn, "the test server")


def test_a_write_inside_a_write_joins_its_transaction(runner: PgRunner) -> None:
    def outer(tx):
        tx.execute("INSERT INTO collections(name, kind, root, created_at) VALUES (?, ?, ?, ?)",
                   ("a", "folder", "/a", 1.0))
        runner.write(lambda inner: inner.execute(
            "INSERT INTO collections(name, kind, root, created_at) VALUES (?, ?, ?, ?)",
            ("b", "folder", "/b", 1.0)))
        raise ValueError("undo both")

    with pytest.raises(ValueError):
        runner.write(outer)
    assert runner.query("SELECT name FROM collections") == []
