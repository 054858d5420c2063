"""Per-source status records written in batches, and the state a re-scan compares against.

A re-scan of thousands of unchanged files must cost no more than a stat each, so the known
state of every source under a folder is read in one query, and statuses (skipped, failed,
queued) are written many to a transaction.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterable

from deskmind.core.memory.store import MemoryStore, drop_content

# Reasons that may not hold on the next scan: such files are retried even when unchanged.
TRANSIENT = ("vanished", "changed while", "permission denied", "read error")


@dataclass(frozen=True)
class Known:
    id: int
    size: int | None
    mtime: float | None
    content_hash: str | None
    status: str
    privacy: str
    collection: str | None
    error: str | None


def known_states(store: MemoryStore, roots: Iterable[str]) -> dict[str, Known]:
    conn = store.reader()
    out: dict[str, Known] = {}
    for root in roots:
        base = root.rstrip("/") or "/"
        prefix = base + "/" if base != "/" else "/"
        rows = conn.execute(
            "SELECT uri, id, size, mtime, content_hash, status, privacy, collection, error "
            "FROM sources WHERE uri = ? OR substr(uri, 1, ?) = ?",
            (base, len(prefix), prefix))
        for r in rows:
            out[r[0]] = Known(*r[1:])
    return out


def known_by_uri(store: MemoryStore, uris: list[str]) -> dict[str, Known]:
    """Known states of these exact uris (files reached through links from outside the roots)."""
    if not uris:
        return {}
    rows = store.reader().execute(
        "SELECT uri, id, size, mtime, content_hash, status, privacy, collection, error "
        "FROM sources WHERE uri IN (SELECT value FROM json_each(?))", (json.dumps(uris),))
    return {r[0]: Known(*r[1:]) for r in rows}


def reached_via(store: MemoryStore, root: str) -> list[tuple[int, str]]:
    """``(id, uri)`` of sources outside ``root`` that were indexed through a link under it."""
    base = root.rstrip("/") or "/"
    prefix = base + "/" if base != "/" else "/"
    rows = store.reader().execute(
        "SELECT id, uri, json_extract(metadata, '$.reached_via') FROM sources "
        "WHERE instr(metadata, '\"reached_via\"') > 0")  # cheap filter before parsing JSON
    return [(sid, uri) for sid, uri, via in rows
            if isinstance(via, str) and via.startswith(prefix) and not uri.startswith(prefix)]


@dataclass
class StatusRecord:
    uri: str
    kind: str
    status: str  # skipped, failed, queued
    reason: str | None
    size: int | None = None
    mtime: float | None = None
    privacy: str = "private"
    collection: str | None = None
    # The file was read and its new content yields nothing to index: stored content goes.
    drop_content: bool = False
    content_hash: str | None = None


def is_transient(reason: str | None) -> bool:
    return bool(reason) and any(t in reason for t in TRANSIENT)


def record_statuses(store: MemoryStore, records: list[StatusRecord]) -> None:
    """Write statuses in one transaction. A source indexed before keeps its chunks and only
    notes the problem in ``error`` (nothing already stored is lost because of a bad read),
    unless the record says its new content yields nothing (``drop_content``): then its chunks,
    vectors, full-text rows, text and links go and the source keeps only its status."""
    if not records:
        return

    def _write(conn: Any) -> None:
        now = time.time()
        for r in records:
            # A transient failure keeps no mtime, so the next scan tries the file again.
            mtime = None if is_transient(r.reason) else r.mtime
            row = conn.execute("SELECT id, status FROM sources WHERE uri = ?", (r.uri,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO sources(uri, kind, status, error, size, mtime, privacy, collection, "
                    "metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?)",
                    (r.uri, r.kind, r.status, r.reason, r.size, mtime, r.privacy, r.collection,
                     now, now))
            elif row[1] == "indexed" and r.status in ("failed", "skipped") and r.drop_content:
                drop_content(conn, row[0])
                conn.execute(
                    "UPDATE sources SET status = ?, error = ?, size = ?, mtime = ?, content_hash = ?, "
                    "privacy = ?, collection = ?, updated_at = ? WHERE id = ?",
                    (r.status, r.reason, r.size, mtime, r.content_hash, r.privacy, r.collection,
                     now, row[0]))
            elif row[1] == "indexed" and r.status in ("failed", "skipped"):
                conn.execute("UPDATE sources SET error = ?, updated_at = ? WHERE id = ?",
                             (f"{r.status}: {r.reason}", now, row[0]))
            else:
                conn.execute(
                    "UPDATE sources SET kind = ?, status = ?, error = ?, size = ?, mtime = ?, "
                    "privacy = ?, collection = ?, updated_at = ? WHERE id = ?",
                    (r.kind, r.status, r.reason, r.size, mtime, r.privacy, r.collection, now, row[0]))

    store.writer.transaction(_write)


def update_tags(store: MemoryStore, changes: list[tuple[int, str, str | None]]) -> None:
    """New privacy tag / collection for unchanged sources (a rule changed, a vault appeared)."""
    if changes:
        store.writer.transaction(lambda conn: conn.executemany(
            "UPDATE sources SET privacy = ?, collection = ? WHERE id = ?",
            [(p, c, i) for i, p, c in changes]))


def touch(store: MemoryStore, items: list[tuple[int, int, float]]) -> None:
    """New size/mtime for sources whose content hash did not change."""
    if items:
        store.writer.transaction(lambda conn: conn.executemany(
            "UPDATE sources SET size = ?, mtime = ?, error = NULL, updated_at = ? WHERE id = ?",
            [(s, m, time.time(), i) for i, s, m in items]))

