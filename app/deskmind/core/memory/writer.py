"""The single owner of every write to the memory database.

All writes in a process go through one thread with one connection, so ingestion, notes,
conversations and deletes can run concurrently without "database is locked". Reads use their
own per-thread connections (WAL lets them run while the writer writes). Other processes (the
headless daemon) are serialised by SQLite's own locking with a busy timeout.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from deskmind.core.errors import StorageError
from deskmind.core.memory import db

log = logging.getLogger(__name__)

T = TypeVar("T")


def translate_db_error(exc: BaseException, path: Path | str) -> StorageError:
    msg = str(exc)
    low = msg.lower()
    if "i/o error" in low or "unable to open" in low:
        # SQLite says "disk I/O error" when it cannot grow its files: say why, when we can.
        why = db.folder_problem(Path(str(path)))
        if why and "is full" in why:
            low = "full"
        elif why:
            return StorageError(f"the memory database {path} refused a write: {why}")
    if "full" in low:
        return StorageError(
            f"the disk holding {path} is full: nothing was changed by this step; "
            "free some space and run it again"
        )
    if "readonly" in low or "read-only" in low:
        return StorageError(
            f"the memory database {path} is read-only here: check the permissions of its folder"
        )
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return StorageError(
            f"the memory database {path} is damaged ({msg}): 'deskmind doctor' checks it; "
            "restore a backup or move it aside"
        )
    if "locked" in low or "busy" in low:
        return StorageError(
            f"the memory database {path} stayed locked by another process: try again"
        )
    return StorageError(f"the memory database {path} refused a write: {msg}")


class Writer:
    """Runs write functions one at a time on a dedicated thread.

    ``call`` and ``submit`` may be called from any thread. A function passed to
    :meth:`transaction` runs inside ``BEGIN IMMEDIATE … COMMIT`` and is rolled back whole on
    any error, so a crash or a full disk never leaves half of a change behind.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deskmind-db-writer")
        self._thread_ident: int | None = None
        self._conn: Any = None
        self._closed = False
        # Open the connection on the writer thread itself; surface open errors here.
        try:
            self._executor.submit(self._open).result()
        except BaseException:
            self._closed = True
            self._executor.shutdown(wait=True)  # no idle writer thread left behind
            raise

    def _open(self) -> None:
        self._thread_ident = threading.get_ident()
        self._conn = db.connect(self.path, cache_kib=db.WRITER_CACHE_KIB)

    @property
    def on_writer_thread(self) -> bool:
        return threading.get_ident() == self._thread_ident

    def submit(self, fn: Callable[[Any], T]) -> "Future[T]":
        """Queue ``fn(conn)`` (autocommit connection) and return its future."""
        if self._closed:
            raise StorageError(f"the memory database {self.path} is closed")
        return self._executor.submit(self._run, fn)

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` on the writer thread and wait for its result."""
        if self.on_writer_thread:
            return fn(self._conn)
        return self.submit(fn).result()

    def transaction(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` in one write transaction on the writer thread and wait."""
        return self.call(lambda conn: self._in_transaction(conn, fn))

    def submit_transaction(self, fn: Callable[[Any], T]) -> "Future[T]":
        return self.submit(lambda conn: self._in_transaction(conn, fn))

    def _run(self, fn: Callable[[Any], T]) -> T:
        try:
            return fn(self._conn)
        except (db.IntegrityError, db.sqlite.ProgrammingError, db.sqlite.InterfaceError):
            raise  # a mistake in the calling code, not a problem of the database
        except db.DatabaseError as exc:
            raise translate_db_error(exc, self.path) from exc

    def _in_transaction(self, conn: Any, fn: Callable[[Any], T]) -> T:
        if conn.in_transaction:
            # A nested call from code already in a transaction on this thread.
            return fn(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except db.OperationalError:  # already rolled back by SQLite (e.g. disk full)
                pass
            raise
        try:
            conn.execute("COMMIT")
        except db.OperationalError:
            try:
                conn.execute("ROLLBACK")
            except db.OperationalError:
                pass
            raise
        return result

    def close(self) -> None:
        """Finish queued writes and close the connection. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True

        def _close(conn: Any) -> None:
            if conn is not None:
                try:
                    conn.execute("PRAGMA optimize")
                except db.DatabaseError:
                    pass
                conn.close()

        try:
            self._executor.submit(_close, self._conn).result()
        finally:
            self._executor.shutdown(wait=True)
