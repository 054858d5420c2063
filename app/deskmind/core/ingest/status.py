"""Per-source status records written in batches, and the state a re-scan compares against.

A re-scan of thousands of unchanged files must cost no more than a stat each, so the known
state of every source under a folder is read in one query, and statuses (skipped, failed,
queued) are written many to a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from deskmind.core.memory import uris
from deskmind.core.memory.ingest_state import StatusRow
from deskmind.core.memory.api import Memory

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
    limits_note: str | None = None   # the metadata of a source a limit cut short

    def read_under(self) -> str | None:
        """What was said about the limits this source was read under, if any limit stopped it."""
        return " ".join(n for n in (self.error, self.limits_note) if n) or None


def known_states(store: Memory, roots: Iterable[str]) -> dict[str, Known]:
    return {r[0]: Known(*r[1:]) for r in store.ingest_state.states_under(roots)}


def known_by_uri(store: Memory, uris: list[str]) -> dict[str, Known]:
    """Known states of these exact uris (files reached through links from outside the roots)."""
    if not uris:
        return {}
    return {r[0]: Known(*r[1:]) for r in store.ingest_state.states_of(uris)}


def reached_via(store: Memory, root: str) -> list[tuple[int, str]]:
    """``(id, uri)`` of sources outside ``root`` that were indexed through a link under it."""
    under = tuple(prefix for _base, prefix in uris.prefixes(root))
    return [(sid, uri) for sid, uri, via in store.ingest_state.reached_via()
            if via.startswith(under) and not uri.startswith(under)]


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


def record_statuses(store: Memory, records: list[StatusRecord]) -> None:
    """Write statuses in one transaction. A source indexed before keeps its chunks and only
    notes the problem in ``error`` (nothing already stored is lost because of a bad read),
    unless the record says its new content yields nothing (``drop_content``): then its chunks,
    vectors, full-text rows, text and links go and the source keeps only its status."""
    # A transient failure keeps no mtime, so the next scan tries the file again.
    store.ingest_state.record_statuses([
        StatusRow(r.uri, r.kind, r.status, r.reason, r.size,
                  None if is_transient(r.reason) else r.mtime, r.privacy, r.collection,
                  r.drop_content, r.content_hash)
        for r in records])


def update_tags(store: Memory, changes: list[tuple[int, str, str | None]]) -> None:
    """New privacy tag / collection for unchanged sources (a rule changed, a vault appeared)."""
    store.ingest_state.update_tags(changes)


def touch(store: Memory, items: list[tuple[int, int, float]]) -> None:
    """New size/mtime for sources whose content hash did not change."""
    store.ingest_state.touch(items)
