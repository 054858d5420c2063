"""The steps of a vector index rebuild on PostgreSQL (see :mod:`deskmind.core.memory.reembed`).

Other machines keep writing during the build; the swap locks ``chunks`` against writes for
its own short transaction, embeds what arrived since the last batch, and activates the new
index, so no chunk is left without a vector in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from deskmind.core.memory.pg import vectors
from deskmind.core.memory.pg.runner import PgTx
from deskmind.core.memory.vectors import VectorIndex

if TYPE_CHECKING:
    from deskmind.core.memory.pg.store import PgMemoryStore

BATCH = 64


class PgIndexBuilder:
    def __init__(self, store: "PgMemoryStore") -> None:
        self.sql = store.sql

    def start(self, model_id: str, dim: int) -> VectorIndex:
        def _start(tx: PgTx) -> VectorIndex:
            # Two machines starting a rebuild at once share one build.
            tx.execute("LOCK TABLE vector_indexes IN SHARE ROW EXCLUSIVE MODE")
            for b in vectors.building_indexes(tx):
                if b.model_id == model_id and b.dim == dim:
                    return b
                vectors.drop_index(tx, b)  # an abandoned build for another model
            return vectors.create_index(tx, model_id, dim, "building")

        return self.sql.write(_start)

    def progress(self, idx: VectorIndex) -> tuple[int, int]:
        return self.sql.query_one(
            "SELECT count(*), count(*) FILTER (WHERE id <= ?) FROM chunks", (idx.watermark,))

    def pending(self, after: int, limit: int) -> list[tuple[int, str]]:
        return self.sql.query("SELECT id, text FROM chunks WHERE id > ? ORDER BY id LIMIT ?",
                              (after, limit))

    def store_batch(self, idx: VectorIndex, rows: list[tuple[int, str]], mat: Any) -> None:
        self.sql.write(lambda tx: _store(tx, idx, rows, mat))

    def swap(self, idx: VectorIndex, embed: Callable[[list[str]], Any]) -> tuple[VectorIndex | None, int]:
        def _swap(tx: PgTx) -> tuple[VectorIndex | None, int]:
            # Writers wait until this commits (readers do not): what they store afterwards
            # goes to the new active index.
            tx.execute("LOCK TABLE chunks IN SHARE MODE")
            wm = tx.execute("SELECT watermark FROM vector_indexes WHERE id = ?", (idx.id,)).fetchone()[0]
            n = 0
            while True:
                rows = tx.execute("SELECT id, text FROM chunks WHERE id > ? ORDER BY id LIMIT ?",
                                  (wm, BATCH)).fetchall()
                if not rows:
                    break
                _store(tx, idx, rows, embed([r[1] for r in rows]))
                wm = rows[-1][0]
                n += len(rows)
            return vectors.activate(tx, idx), n

        return self.sql.write(_swap)


def _store(tx: PgTx, idx: VectorIndex, rows: list[tuple[int, str]], mat: Any) -> None:
    vectors.insert_vectors(tx, idx, [r[0] for r in rows], mat)
    tx.execute("UPDATE vector_indexes SET watermark = ? WHERE id = ?", (rows[-1][0], idx.id))
