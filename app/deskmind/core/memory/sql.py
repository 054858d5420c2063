"""The SQL runner every domain repository is written against, and its SQLite implementation.

Repositories (gateway clients, audit logs, the egress ledger, links, ingest state) write their
SQL once, portable between SQLite >= 3.35 and PostgreSQL >= 13: ``?`` placeholders (a Postgres
runner turns them into its own), ``INSERT … ON CONFLICT``, ``RETURNING id``, timestamps as
seconds since the epoch computed in Python, booleans as 0/1. No literal ``?`` or ``%`` in the
SQL text, no ``json_each``, ``strftime``, ``rowid``, ``GROUP_CONCAT`` or ``INSERT OR …``.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence, TypeVar

if TYPE_CHECKING:
    from deskmind.core.memory.store import MemoryStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> tuple | None: ...

    def fetchall(self) -> list[tuple]: ...


class Tx(Protocol):
    """What a write function receives: one open transaction."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> Any: ...


class SqlRunner(Protocol):
    """Reads and transactions on one memory database. Every method may be called from any
    thread except the GUI thread (they block on I/O).

    ``write(fn)`` runs ``fn(tx)`` in one transaction and returns its result; an exception
    rolls the whole of it back. A ``write`` (or a store method that writes) called from inside
    ``fn`` joins the same transaction. ``submit(fn)`` does the same without waiting."""

    dialect: str  # "sqlite" or "postgres"

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]: ...

    def query_one(self, sql: str, args: Sequence[Any] = ()) -> tuple | None: ...

    def write(self, fn: Callable[[Tx], T]) -> T: ...

    def submit(self, fn: Callable[[Tx], T]) -> "Future[T]": ...


def placeholders(n: int) -> str:
    """``?, ?, ?`` for an ``IN (…)`` list of ``n`` values (n >= 1)."""
    if n < 1:
        raise ValueError("an IN list needs at least one value")
    return ", ".join("?" * n)


def batches(values: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    """Slices of at most ``size`` values, to keep ``IN (…)`` lists within every engine's limits."""
    for i in range(0, len(values), size):
        yield values[i:i + size]


class SqliteRunner:
    """The SQLite store's per-thread read connections and its single writer thread."""

    dialect = "sqlite"

    def __init__(self, store: "MemoryStore") -> None:
        self._store = store

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return self._store.reader().execute(sql, tuple(args)).fetchall()

    def query_one(self, sql: str, args: Sequence[Any] = ()) -> tuple | None:
        return self._store.reader().execute(sql, tuple(args)).fetchone()

    def write(self, fn: Callable[[Tx], T]) -> T:
        return self._store.writer.transaction(fn)

    def submit(self, fn: Callable[[Tx], T]) -> "Future[T]":
        return self._store.writer.submit_transaction(fn)
