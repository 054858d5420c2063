"""What indexing knows about each file source: the state a re-scan compares against, and
statuses (skipped, failed, queued) written many to a transaction."""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, NamedTuple, Sequence

from deskmind.core.memory import uris
from deskmind.core.memory.machine import MachineScope
from deskmind.core.memory.sql import SqlRunner, batches, placeholders

# The last column: an indexed source's metadata when a limit cut it short (its notes name the
# limit and its value, so a raised limit gets the file read again).
_STATE_COLUMNS = ("uri, id, size, mtime, content_hash, status, privacy, collection, error, "
                  "CASE WHEN metadata LIKE ? OR metadata LIKE ? THEN metadata END")
_LIMIT_NOTES = ("%budget per file:%", "%limit per parser:%")
# The LIKE wildcard goes in as an argument: repository SQL holds no literal '%'.
_REACHED_VIA = '%"reached_via"%'


class StatusRow(NamedTuple):
    uri: str
    kind: str
    status: str  # skipped, failed, queued
    reason: str | None
    size: int | None
    mtime: float | None  # None makes the next scan read the file again
    privacy: str
    collection: str | None
    drop_content: bool
    content_hash: str | None


def drop_content(tx: Any, source_id: int) -> None:
    """Remove what a source's content made: chunks (and with them their full-text rows and
    vectors), its extracted text and its outgoing links. The source row stays."""
    tx.execute("DELETE FROM chunks WHERE source_id = ?", (source_id,))
    tx.execute("DELETE FROM documents WHERE source_id = ?", (source_id,))
    tx.execute("DELETE FROM source_links WHERE source_id = ?", (source_id,))


class IngestStateStore:
    """File sources are this machine's: every read and write here is of the sources stored
    under ``scope``'s machine (another machine's files at the same paths are its own)."""

    def __init__(self, sql: SqlRunner, scope: MachineScope) -> None:
        self.sql = sql
        self.scope = scope

    def states_under(self, roots: Iterable[str]) -> list[tuple]:
        """Rows ``(uri, id, size, mtime, content_hash, status, privacy, collection, error,
        limits_note)`` of every source of this machine at or under these folders."""
        out: list[tuple] = []
        for root in roots:
            # Files whose names are not UTF-8 are kept as file:// URIs: a second prefix.
            for base, prefix in uris.prefixes(root):
                out.extend(self.sql.query(
                    f"SELECT {_STATE_COLUMNS} FROM sources WHERE machine = ? "
                    "AND (uri = ? OR substr(uri, 1, ?) = ?)",
                    (*_LIMIT_NOTES, self.scope.id, base, len(prefix), prefix)))
        return out

    def states_of(self, uris: Sequence[str]) -> list[tuple]:
        """The same rows for these exact uris."""
        out: list[tuple] = []
        for part in batches(list(uris)):
            out.extend(self.sql.query(
                f"SELECT {_STATE_COLUMNS} FROM sources WHERE machine = ? "
                f"AND uri IN ({placeholders(len(part))})", (*_LIMIT_NOTES, self.scope.id, *part)))
        return out

    def reached_via(self) -> list[tuple[int, str, str]]:
        """``(id, uri, reached_via)`` of this machine's sources indexed through a link from
        another folder."""
        out = []
        rows = self.sql.query(
            "SELECT id, uri, metadata FROM sources WHERE machine = ? AND metadata LIKE ?",
            (self.scope.id, _REACHED_VIA))  # a cheap filter before parsing JSON
        for sid, uri, meta in rows:
            try:
                via = json.loads(meta or "{}").get("reached_via")
            except (ValueError, AttributeError):
                continue
            if isinstance(via, str):
                out.append((sid, uri, via))
        return out

    def record_statuses(self, rows: Sequence[StatusRow]) -> None:
        """Write statuses in one transaction. A source indexed before keeps its chunks and only
        notes the problem in ``error``, unless the row says its new content yields nothing
        (``drop_content``): then its chunks, vectors, text and links go."""
        def _write(tx: Any) -> None:
            now = time.time()
            noted = False
            for r in rows:
                machine = self.scope.key(r.uri)
                if machine and not noted:
                    self.scope.register(tx)
                    noted = True
                row = tx.execute("SELECT id, status FROM sources WHERE uri = ? AND machine = ?",
                                 (r.uri, machine)).fetchone()
                if row is None:
                    tx.execute(
                        "INSERT INTO sources(uri, kind, status, error, size, mtime, privacy, "
                        "collection, metadata, created_at, updated_at, machine) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?)",
                        (r.uri, r.kind, r.status, r.reason, r.size, r.mtime, r.privacy,
                         r.collection, now, now, machine))
                elif row[1] == "indexed" and r.status in ("failed", "skipped") and r.drop_content:
                    drop_content(tx, row[0])
                    tx.execute(
                        "UPDATE sources SET status = ?, error = ?, size = ?, mtime = ?, "
                        "content_hash = ?, privacy = ?, collection = ?, updated_at = ? WHERE id = ?",
                        (r.status, r.reason, r.size, r.mtime, r.content_hash, r.privacy,
                         r.collection, now, row[0]))
                elif row[1] == "indexed" and r.status in ("failed", "skipped"):
                    tx.execute("UPDATE sources SET error = ?, updated_at = ? WHERE id = ?",
                               (f"{r.status}: {r.reason}", now, row[0]))
                else:
                    tx.execute(
                        "UPDATE sources SET kind = ?, status = ?, error = ?, size = ?, mtime = ?, "
                        "privacy = ?, collection = ?, updated_at = ? WHERE id = ?",
                        (r.kind, r.status, r.reason, r.size, r.mtime, r.privacy, r.collection,
                         now, row[0]))

        if rows:
            self.sql.write(_write)
            self.scope.committed(r.uri for r in rows)

    def update_tags(self, changes: Sequence[tuple[int, str, str | None]]) -> None:
        """``(id, privacy, collection)`` for sources whose content did not change."""
        if changes:
            self.sql.write(lambda tx: tx.executemany(
                "UPDATE sources SET privacy = ?, collection = ? WHERE id = ?",
                [(p, c, i) for i, p, c in changes]))

    def touch(self, items: Sequence[tuple[int, int, float]]) -> None:
        """``(id, size, mtime)`` for sources whose content hash did not change."""
        if items:
            now = time.time()
            self.sql.write(lambda tx: tx.executemany(
                "UPDATE sources SET size = ?, mtime = ?, error = NULL, updated_at = ? WHERE id = ?",
                [(s, m, now, i) for i, s, m in items]))
