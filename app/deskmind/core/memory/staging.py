"""Large sources staged batch by batch (tables from migration ``m052_staged_chunks``).

Indexing a large file embeds its chunks a batch at a time; each batch goes into
``staged_chunks`` (with its vectors) in a short transaction of its own, so neither the chunks
nor their vectors are ever all in memory. ``put_source(draft, idx, staged=stage_id)`` then
moves them into ``chunks`` in one short transaction: a reader sees the old version of the
source or the new one, and a crash before that leaves the source as it was, with rows here
that :meth:`StagedChunks.discard_stale` removes at the start of the next index run.

The SQL is portable (see :mod:`deskmind.core.memory.sql`); only the vector's encoding differs
between backends (a float32 blob on SQLite, a pgvector ``vector`` on PostgreSQL). Every method
blocks on I/O: call from any thread but the GUI's.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any, Callable, Sequence

import numpy as np

from deskmind.core.errors import StorageError
from deskmind.core.memory.models import NewChunk
from deskmind.core.memory.sql import SqlRunner, Tx

log = logging.getLogger(__name__)

# A stage nobody has added to for this long is abandoned, whoever owns it (another machine
# that crashed; a process whose id was reused).
ABANDONED_S = 6 * 3600


def owner_tag() -> str:
    """Who stages: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_gone(owner: str, host: str) -> bool:
    """Whether the process named by ``owner`` is known to be gone (only on this host)."""
    name, _, pid = owner.rpartition(":")
    if name != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, not ours to signal
        return False
    return False


class StagedChunks:
    def __init__(self, sql: SqlRunner, encode: Callable[[np.ndarray], Any],
                 clean: Callable[[str], str] = lambda t: t) -> None:
        self.sql = sql
        self._encode = encode   # a vector as this backend stores it
        self._clean = clean     # text as this backend can store it

    def open(self, uri: str, index_id: int | None) -> int:
        """A new, empty stage for the source at ``uri`` whose vectors are for ``index_id``."""
        now = time.time()

        def _open(tx: Tx) -> int:
            row = tx.execute(
                "INSERT INTO staged_sources(uri, owner, index_id, started_at, touched_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (uri, owner_tag(), index_id, now, now)).fetchone()
            return int(row[0])

        return self.sql.write(_open)

    def add(self, stage: int, first_ord: int, chunks: Sequence[NewChunk], hashes: Sequence[str],
            vectors: dict[str, np.ndarray]) -> None:
        """Stage a batch of chunks (numbered from ``first_ord``) in one transaction. A chunk
        whose text hash has no vector in ``vectors`` is staged without one: the publish takes
        the vector of the same text in memory or earlier in this stage, if there is one."""
        rows = [(stage, first_ord + i, self._clean(ch.text), json.dumps(ch.locator, ensure_ascii=False),
                 h, self._encode(vectors[h]) if h in vectors else None)
                for i, (ch, h) in enumerate(zip(chunks, hashes))]

        def _add(tx: Tx) -> None:
            cur = tx.execute("UPDATE staged_sources SET touched_at = ? WHERE id = ?", (time.time(), stage))
            if cur.rowcount == 0:
                raise StorageError(f"staged chunks {stage} were discarded (by another process "
                                   "that took them for abandoned): index the file again")
            tx.executemany(
                "INSERT INTO staged_chunks(stage_id, ord, text, locator, text_hash, embedding) "
                "VALUES (?, ?, ?, ?, ?, ?)", rows)

        self.sql.write(_add)

    def discard(self, stage: int) -> None:
        """Drop a stage and its chunks (indexing failed or was cancelled)."""
        self.sql.write(lambda tx: drop_stage(tx, stage))

    def discard_stale(self) -> int:
        """Drop the stages left by processes that are gone (killed mid-file) or abandoned for
        ``ABANDONED_S``; returns how many went."""
        rows = self.sql.query("SELECT id, owner, touched_at FROM staged_sources")
        if not rows:
            return 0
        host, now = socket.gethostname(), time.time()
        stale = [r[0] for r in rows if now - r[2] > ABANDONED_S or _owner_gone(r[1], host)]
        for stage in stale:
            self.discard(stage)
        if stale:
            log.info("dropped %d staged source(s) left by an indexing run that did not finish", len(stale))
        return len(stale)

    def counts(self) -> tuple[int, int]:
        """``(stages, staged chunks)`` held now."""
        stages = self.sql.query_one("SELECT count(*) FROM staged_sources")
        chunks = self.sql.query_one("SELECT count(*) FROM staged_chunks")
        return int(stages[0]), int(chunks[0])  # type: ignore[index]


def check_stage(tx: Tx, stage: int, uri: str) -> int | None:
    """The index id a stage's vectors were made for; raises when the stage is gone or is for
    another source. Call inside the publishing transaction."""
    row = tx.execute("SELECT uri, index_id FROM staged_sources WHERE id = ?", (stage,)).fetchone()
    if row is None or row[0] != uri:
        raise StorageError(f"the staged chunks of {uri} are gone (taken for abandoned by another "
                           "process?): index the file again")
    return row[1]


def drop_stage(tx: Tx, stage: int) -> None:
    tx.execute("DELETE FROM staged_chunks WHERE stage_id = ?", (stage,))
    tx.execute("DELETE FROM staged_sources WHERE id = ?", (stage,))
