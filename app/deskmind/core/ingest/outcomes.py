"""What an indexing run reports: progress events, per-file outcomes and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from deskmind.core.ingest.types import Link
from deskmind.core.memory.models import NewChunk, SourceDraft

STATUSES = ("indexed", "unchanged", "skipped", "failed", "queued", "removed")


@dataclass
class IndexEvent:
    """Progress of an indexing run. ``kind`` is scan, file, or done."""

    kind: str
    files_done: int = 0
    files_total: int = 0
    chunks: int = 0
    bytes: int = 0
    bytes_total: int = 0
    eta_s: float | None = None
    path: str | None = None
    status: str | None = None  # indexed, unchanged, skipped, failed, queued, removed
    reason: str | None = None


@dataclass
class FileOutcome:
    path: str
    kind: str | None
    status: str
    reason: str | None = None
    chunks: int = 0


@dataclass
class Prepared:
    path: Path
    outcome: FileOutcome
    draft: SourceDraft | None = None
    links: list[Link] = field(default_factory=list)
    touch: tuple[int, int, float] | None = None
    # The file's content changed and the new content yields nothing to index: what was stored
    # for it is stale and goes. Holds the new content hash.
    replaced: str | None = None
    # A large text's chunks, made as they are embedded and staged (``draft.chunks`` is empty).
    stream: Iterator[NewChunk] | None = None
    # Not a regular file when opened (swapped in after the scan): never kept as a source.
    unlisted: bool = False


@dataclass
class IndexSummary:
    outcomes: list[FileOutcome] = field(default_factory=list)
    embedded_chunks: int = 0
    seconds: float = 0.0
    ignored: int = 0
    ignored_reasons: dict[str, int] = field(default_factory=dict)
    # scan, parse_cpu (summed over worker threads), embed, store, total; seconds
    timings: dict[str, float] = field(default_factory=dict)
    cancelled: bool = False

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def by_kind(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            if o.status == "removed":
                continue
            k = out.setdefault(o.kind or "other", {})
            k[o.status] = k.get(o.status, 0) + 1
            if o.chunks:
                k["chunks"] = k.get("chunks", 0) + o.chunks
        return out

    def outcome(self, path: str | Path) -> FileOutcome | None:
        p = str(path)
        return next((o for o in reversed(self.outcomes) if o.path == p), None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {s: self.count(s) for s in STATUSES}
        d.update({
            "ignored": self.ignored,
            "chunks": sum(o.chunks for o in self.outcomes if o.status == "indexed"),
            "embedded_chunks": self.embedded_chunks, "seconds": round(self.seconds, 3),
            "by_kind": self.by_kind(),
            "ignored_reasons": self.ignored_reasons,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "cancelled": self.cancelled,
            "problems": [o.__dict__ for o in self.outcomes if o.status in ("skipped", "failed")],
            # indexed up to a budget: what was left out
            "partly": [o.__dict__ for o in self.outcomes if o.status == "indexed" and o.reason],
            "queued_files": [o.path for o in self.outcomes if o.status == "queued"],
        })
        return d
