"""Bulk reads and writes of whole tables on a PostgreSQL memory (for copying a memory, see
:mod:`deskmind.core.memory.copy`).

Rows land through ``COPY … FROM STDIN`` (several times faster than row-by-row inserts), and
the HNSW index of a copied vector table is built once after its vectors are in, not updated
with every batch. PostgreSQL text cannot hold NUL characters, which SQLite text can: they
become U+FFFD, as they do when a source is stored (and the count is reported).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from deskmind.core.memory.pg import vectors
from deskmind.core.memory.pg.runner import PgTx, to_pg
from deskmind.core.memory.vectors import VectorIndex

if TYPE_CHECKING:
    from deskmind.core.memory.pg.store import PgMemoryStore

log = logging.getLogger(__name__)

# The chunks' GIN index as migration m001 creates it (tests/core/memory/test_copy.py checks
# that a copied database ends up with the very same definition).
FTS_INDEX = "chunks_tsv"
FTS_INDEX_DDL = (f"CREATE INDEX IF NOT EXISTS {FTS_INDEX} ON chunks USING gin(tsv) "
                 "WITH (fastupdate = off)")


class PgBulk:
    """Whole-table access to a :class:`~deskmind.core.memory.pg.store.PgMemoryStore`."""

    row_order = "ctid"

    def __init__(self, store: "PgMemoryStore") -> None:
        self.store = store
        self.sql = store.sql

    def table_names(self) -> set[str]:
        return {r[0] for r in self.sql.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self.sql.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = ? AND is_generated = 'NEVER' "
            "ORDER BY ordinal_position", (table,))]

    def primary_key(self, table: str) -> list[str]:
        return [r[0] for r in self.sql.query(
            "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY "
            "AS k(attnum, n) ON TRUE JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = k.attnum WHERE i.indrelid = to_regclass(?) AND i.indisprimary "
            "ORDER BY k.n", (table,))]

    def insert(self, tx: PgTx, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        """COPY ``rows`` into ``table``; returns how many text values had NUL characters."""
        if not rows:
            return 0
        cleaned = 0
        with tx.conn.cursor() as cur:
            with cur.copy(f"COPY {_ident(table)} ({', '.join(map(_ident, cols))}) FROM STDIN") as cp:
                for row in rows:
                    if any(isinstance(v, str) and "\x00" in v for v in row):
                        cleaned += sum(1 for v in row if isinstance(v, str) and "\x00" in v)
                        row = [v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in row]
                    cp.write_row(row)
        return cleaned

    def before_table(self, table: str) -> None:
        """Before the first batch of ``table``: the chunks' full-text index is dropped, to be
        built in one pass by :meth:`finish` (about twice as fast as keeping it up to date row
        by row; the target is a database this copy owns until it is verified)."""
        if table == "chunks":
            self.sql.write(lambda tx: tx.execute(f"DROP INDEX IF EXISTS {FTS_INDEX}"))

    # -- vectors -------------------------------------------------------------------------

    def create_vector_storage(self, tx: PgTx, idx: VectorIndex) -> None:
        vectors.create_table(tx, idx)

    def read_vectors(self, idx: VectorIndex, after: int, limit: int) -> tuple[list[int], np.ndarray]:
        sql = to_pg(f"SELECT chunk_id, embedding FROM {idx.float_table} WHERE chunk_id > ? "
                    "ORDER BY chunk_id LIMIT ?")

        def _read(tx: PgTx) -> list[tuple]:
            # Binary results: parsing a vector's text form costs more than the query.
            with tx.conn.cursor(binary=True) as cur:
                return cur.execute(sql, (int(after), int(limit))).fetchall()

        rows = self.sql.read(_read)
        if not rows:
            return [], np.zeros((0, idx.dim), dtype=np.float32)
        return [r[0] for r in rows], np.stack([vectors.as_array(r[1]) for r in rows])

    def write_vectors(self, tx: PgTx, idx: VectorIndex, ids: Sequence[int], mat: np.ndarray) -> None:
        if len(ids) != len(mat) or (len(ids) and mat.shape[1] != idx.dim):
            raise ValueError(f"index {idx.id} holds {idx.dim}-d vectors, one per chunk id")
        with tx.conn.cursor() as cur:
            # Binary: a vector's text form costs more to write and parse than its 4-byte
            # floats (16x slower for 4000 384-d vectors, bench/store_copy.py).
            with cur.copy(f"COPY {idx.float_table} (chunk_id, embedding) FROM STDIN "
                          "(FORMAT BINARY)") as cp:
                cp.set_types(["bigint", "vector"])
                for cid, vec in zip(ids, mat):
                    cp.write_row((int(cid), np.asarray(vec, dtype=np.float32)))

    def count_vectors(self, idx: VectorIndex) -> int:
        return self.sql.query_one(f"SELECT count(*) FROM {idx.float_table}")[0]

    # -- id counters ---------------------------------------------------------------------

    def _sequence(self, tx: Any, table: str) -> str | None:
        row = tx.execute("SELECT pg_get_serial_sequence(?, 'id')", (table,)).fetchone()
        return row[0] if row else None

    def high_water(self, table: str) -> int:
        """The largest id the identity of ``table`` has handed out (0 when none)."""
        def _read(tx: PgTx) -> int:
            seq = self._sequence(tx, table)
            return self.high_water_in(tx, seq) if seq else 0

        return self.sql.read(_read)

    def raise_high_water(self, table: str, at_least: int) -> None:
        """Move the identity of ``table`` past ``at_least`` and past every id in it (rows copied
        with their ids do not move it), so new rows never take a copied or forgotten id."""
        def _raise(tx: PgTx) -> None:
            seq = self._sequence(tx, table)
            if seq is None:
                return
            top = tx.execute(f"SELECT coalesce(max(id), 0) FROM {_ident(table)}").fetchone()[0]
            n = max(int(at_least), int(top), self.high_water_in(tx, seq))
            if n >= 1:
                tx.execute("SELECT setval(?, ?, true)", (seq, n))

        self.sql.write(_raise)

    @staticmethod
    def high_water_in(tx: PgTx, seq: str) -> int:
        last, called = tx.execute(f"SELECT last_value, is_called FROM {seq}").fetchone()
        return int(last) if called else int(last) - 1

    def finish(self, indexes: Sequence[VectorIndex], on_step: Callable[[str], None]) -> None:
        """Build the full-text index and the HNSW index of each copied vector table, then
        refresh the planner's statistics (a bulk load leaves them empty)."""
        on_step("building the full-text index")
        self.sql.write(lambda tx: tx.execute(FTS_INDEX_DDL))
        for idx in indexes:
            on_step(f"building the HNSW index of vector index {idx.id}")
            self.sql.write(lambda tx, i=idx: vectors.create_hnsw(tx, i))
        on_step("analyzing")
        self.sql.write(lambda tx: tx.execute("ANALYZE"))


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unexpected name in the memory's schema: {name!r}")
    return name
