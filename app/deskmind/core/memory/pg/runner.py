"""Running portable SQL on PostgreSQL: a pool of connections, one transaction per write.

Repository SQL is written once with ``?`` placeholders (see :mod:`deskmind.core.memory.sql`);
here each ``?`` becomes psycopg's ``%s``. Unlike SQLite there is no single writer thread:
every :meth:`PgRunner.write` takes a pooled connection and runs its function in its own
transaction, so several writers (threads here, processes or other machines) work at once.
A transaction that loses a serialization race or its connection is run again from the start
(its function must only touch the database, which the rollback undid).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Sequence, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import ConnectionPool, PoolTimeout

from deskmind.core.errors import StorageError
from deskmind.core.memory.urls import redact_url

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bumped by every write transaction, read by ``data_version``; NOTIFY carries it to listeners.
CHANGES_CHANNEL = "deskmind_changes"
RETRIES = 3
# Set on every pooled connection. JIT compilation pays off only for long analytical queries;
# for the short statements of a memory it costs milliseconds when the planner's cost
# estimate (a ranked full-text search can reach it) crosses ``jit_above_cost``.
SESSION_SETTINGS = {"jit": "off"}
_QMARK = re.compile(r"\?")


@functools.lru_cache(maxsize=1024)
def to_pg(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s``. Repository SQL holds no literal ``?`` or ``%``."""
    return _QMARK.sub("%s", sql)


class PgTx:
    """What a write function receives: ``execute`` and ``executemany`` on one transaction."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor:
        return self.conn.execute(to_pg(sql), tuple(args) if args else None)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> psycopg.Cursor:
        cur = self.conn.cursor()
        rows = [tuple(r) for r in seq]
        if rows:
            cur.executemany(to_pg(sql), rows)
        return cur


class PgRunner:
    """The SQL runner of a PostgreSQL memory. Every method may be called from any thread but
    the GUI's (they block on the network)."""

    dialect = "postgres"

    def __init__(self, conninfo: str, *, password: str | None = None, min_size: int = 1,
                 max_size: int = 8, connect_timeout: float = 10.0,
                 configure: Callable[[psycopg.Connection], None] | None = None,
                 settings: dict[str, str] | None = None) -> None:
        """``settings``: server settings for every connection, beside :data:`SESSION_SETTINGS`."""
        self.display_url = redact_url(conninfo)
        self._configure = configure
        self._settings = {**SESSION_SETTINGS, **(settings or {})}
        self._kwargs: dict[str, Any] = {"connect_timeout": max(1, int(connect_timeout)),
                                        "application_name": "deskmind"}
        if password is not None:
            self._kwargs["password"] = password
        self.pool = ConnectionPool(
            conninfo, min_size=min_size, max_size=max_size, open=False, timeout=connect_timeout,
            kwargs={**self._kwargs, "autocommit": True},
            configure=self._setup, name="deskmind-memory")
        try:
            self.pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self.pool.close()
            raise StorageError(self._unreachable(conninfo, connect_timeout)) from exc
        self._local = threading.local()  # the write transaction this thread is inside
        self._async: ThreadPoolExecutor | None = None
        self._async_lock = threading.Lock()

    def _setup(self, conn: psycopg.Connection) -> None:
        for name, value in self._settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        if self._configure is not None:
            self._configure(conn)

    def _unreachable(self, conninfo: str, timeout: float) -> str:
        # The pool logs each failed attempt; one direct try gives the server's own reason.
        reason = "no answer"
        try:
            psycopg.connect(conninfo, **self._kwargs).close()
        except psycopg.OperationalError as exc:
            reason = _first_line(exc)
        except Exception as exc:  # pragma: no cover - depends on the server
            reason = _first_line(exc)
        return (f"the memory database {self.display_url} could not be reached ({reason}): "
                "check that the server is running and reachable, and the user, database and "
                "password ('deskmind store password' sets it)")

    # -- reading -----------------------------------------------------------------------

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return self._run(lambda tx: tx.execute(sql, args).fetchall(), mode="auto")

    def query_one(self, sql: str, args: Sequence[Any] = ()) -> tuple | None:
        return self._run(lambda tx: tx.execute(sql, args).fetchone(), mode="auto")

    def read(self, fn: Callable[[PgTx], T]) -> T:
        """Run several reads on one snapshot (a REPEATABLE READ, READ ONLY transaction)."""
        return self._run(fn, mode="snapshot")

    def outside_transaction(self, fn: Callable[[PgTx], T]) -> T:
        """Run ``fn`` on an autocommit connection, each statement on its own snapshot: for
        what PostgreSQL refuses inside a transaction (VACUUM, REINDEX CONCURRENTLY), and for
        reads whose consistency one statement gives (no BEGIN and COMMIT round trips)."""
        return self._run(fn, mode="auto")

    # -- writing -----------------------------------------------------------------------

    def write(self, fn: Callable[[PgTx], T]) -> T:
        """Run ``fn`` in one transaction and commit; everything is rolled back if it raises.
        Called from inside a write function on the same thread, it joins that transaction."""
        current = getattr(self._local, "tx", None)
        if current is not None:
            return fn(current)
        return self._run(fn, mode="write")

    def submit(self, fn: Callable[[PgTx], T]) -> "Future[T]":
        """Like :meth:`write`, without waiting (audit records)."""
        with self._async_lock:
            if self._async is None:
                self._async = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-submit")
            return self._async.submit(self.write, fn)

    def _run(self, fn: Callable[[PgTx], T], *, mode: str) -> T:
        delay = 0.05
        for attempt in range(RETRIES + 1):
            try:
                with self.pool.connection() as conn:
                    if mode == "auto":
                        return fn(PgTx(conn))
                    with conn.transaction():
                        if mode == "snapshot":
                            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        tx = PgTx(conn)
                        if mode == "write":
                            self._local.tx = tx
                            try:
                                result = fn(tx)
                            finally:
                                self._local.tx = None
                        else:
                            result = fn(tx)
                        if mode == "write":
                            # Last, so the row lock that orders writers is held only to commit.
                            conn.execute("UPDATE changes SET n = n + 1")
                            conn.execute("SELECT pg_notify(%s, '')", (CHANGES_CHANNEL,))
                    return result
            except (pgerrors.SerializationFailure, pgerrors.DeadlockDetected) as exc:
                if attempt == RETRIES:
                    raise StorageError(
                        f"the memory database {self.display_url} stayed busy with other "
                        f"writers: try again ({_first_line(exc)})") from exc
                log.debug("write raced another writer, running it again: %s", exc)
            except psycopg.OperationalError as exc:
                if not _connection_lost(exc):
                    raise
                # The connection went away (a server restart, a network drop): the server rolled
                # the transaction back, so running it again cannot write anything twice.
                if attempt == RETRIES:
                    raise StorageError(
                        f"the memory database {self.display_url} stopped answering "
                        f"({_first_line(exc)}); nothing of this step was written: try again "
                        "when the server is back") from exc
                log.warning("lost the connection to %s, trying again: %s",
                            self.display_url, _first_line(exc))
            except PoolTimeout as exc:
                raise StorageError(
                    f"the memory database {self.display_url} gave no connection in time: "
                    "check that the server is running and reachable") from exc
            time.sleep(delay)
            delay *= 4
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._async_lock:
            if self._async is not None:
                self._async.shutdown(wait=True)
                self._async = None
        self.pool.close()


def _connection_lost(exc: BaseException) -> bool:
    state = getattr(exc, "sqlstate", None)
    # No SQLSTATE: libpq lost the socket. Class 08: connection exception; 57P0x: the server
    # is shutting down or restarting.
    return state is None or state.startswith("08") or state.startswith("57P0")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
