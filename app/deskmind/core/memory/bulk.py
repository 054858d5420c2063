"""Bulk reads and writes of whole tables on a SQLite memory (for copying a memory, see
:mod:`deskmind.core.memory.copy`).

The portable parts of a copy (keyset reads, the checkpoint rows) are written once in
``copy.py``; what differs by engine is here and in :mod:`deskmind.core.memory.pg.bulk`: how
tables and columns are listed, how rows land (``executemany`` here, ``COPY`` there), how the
vectors of an index are stored and how an id counter's high-water mark is kept.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from deskmind.core.memory import vectors
from deskmind.core.memory.vectors import VectorIndex

if TYPE_CHECKING:
    from deskmind.core.memory.store import MemoryStore

log = logging.getLogger(__name__)


class SqliteBulk:
    """Whole-table access to a :class:`~deskmind.core.memory.store.MemoryStore`."""

    # A tie-break that keeps rows of a table without a unique key in the order they were
    # written (links of one source, in reading order).
    row_order = "rowid"

    def __init__(self, store: "MemoryStore") -> None:
        self.store = store
        self.sql = store.sql

    def table_names(self) -> set[str]:
        return {r[0] for r in self.sql.query(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, table: str) -> list[str]:
        # table_xinfo's hidden column: 0 for a stored column, 2 and 3 for generated ones.
        return [r[1] for r in self.sql.query(f"PRAGMA table_xinfo({_ident(table)})") if r[6] == 0]

    def primary_key(self, table: str) -> list[str]:
        rows = [r for r in self.sql.query(f"PRAGMA table_info({_ident(table)})") if r[5] > 0]
        return [r[1] for r in sorted(rows, key=lambda r: r[5])]

    def insert(self, tx: Any, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        tx.executemany(
            f"INSERT INTO {_ident(table)} ({', '.join(map(_ident, cols))}) "
            f"VALUES ({', '.join('?' * len(cols))})", rows)
        return 0

    def before_table(self, table: str) -> None:
        """Nothing to prepare: the FTS5 triggers index each chunk as it lands."""

    # -- vectors -------------------------------------------------------------------------

    def create_vector_storage(self, tx: Any, idx: VectorIndex) -> None:
        vectors.create_storage(tx, idx)

    def read_vectors(self, idx: VectorIndex, after: int, limit: int) -> tuple[list[int], np.ndarray]:
        rows = self.sql.query(
            f"SELECT chunk_id, embedding FROM {idx.float_table} WHERE chunk_id > ? "
            "ORDER BY chunk_id LIMIT ?", (int(after), int(limit)))
        if not rows:
            return [], np.zeros((0, idx.dim), dtype=np.float32)
        mat = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), idx.dim)
        return [r[0] for r in rows], mat

    def write_vectors(self, tx: Any, idx: VectorIndex, ids: Sequence[int], mat: np.ndarray) -> None:
        vectors.insert_vectors(tx, idx, ids, mat)

    def count_vectors(self, idx: VectorIndex) -> int:
        return self.sql.query_one(f"SELECT count(*) FROM {idx.float_table}")[0]

    # -- id counters ---------------------------------------------------------------------

    def high_water(self, table: str) -> int:
        """The largest id ever handed out in ``table`` (AUTOINCREMENT never reuses one)."""
        row = self.sql.query_one("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
        return int(row[0]) if row else 0

    def raise_high_water(self, table: str, at_least: int) -> None:
        def _raise(tx: Any) -> None:
            row = tx.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
            if row is None:
                tx.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", (table, at_least))
            elif row[0] < at_least:
                tx.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (at_least, table))

        self.sql.write(_raise)

    def finish(self, indexes: Sequence[VectorIndex], on_step: Callable[[str], None]) -> None:
        """Nothing to build afterwards: FTS rows and bit vectors were written with each batch."""


def _ident(name: str) -> str:
    """A table or column name as an identifier (names come from the databases' catalogs)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unexpected name in the memory's schema: {name!r}")
    return name
