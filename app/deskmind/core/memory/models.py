"""Plain records that move in and out of the memory store."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

PRIVACY_LEVELS = ("public", "personal", "private", "secret")
DEFAULT_PRIVACY = "private"


@dataclass
class NewChunk:
    text: str
    locator: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceDraft:
    """Everything an ingestion step learned about one source, ready to be stored atomically."""

    uri: str
    kind: str
    title: str | None = None
    content_hash: str | None = None
    size: int | None = None
    mtime: float | None = None
    privacy: str = DEFAULT_PRIVACY
    collection: str | None = None
    parent_id: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    extractor: str = "text"
    chunks: list[NewChunk] = field(default_factory=list)
    # Sources this one was made from besides ``parent_id`` (a conversation: those it cited).
    # Forgetting any of them forgets this one too.
    derived_from: list[int] = field(default_factory=list)
    # Update this stored source (by id) in place. If it is gone (forgotten meanwhile), nothing
    # is stored and SourcesGone is raised: a late update must never bring it back.
    replaces: int | None = None


@dataclass
class Source:
    id: int
    uri: str
    kind: str
    title: str | None
    content_hash: str | None
    size: int | None
    mtime: float | None
    privacy: str
    status: str
    error: str | None
    collection: str | None
    parent_id: int | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    indexed_at: float | None
    # The machine that indexed a file source ('' for what every machine shares: notes,
    # meetings, conversations); see core/memory/machine.py.
    machine: str = ""
    chunk_count: int = 0

    COLUMNS = (
        "id, uri, kind, title, content_hash, size, mtime, privacy, status, error, collection, "
        "parent_id, metadata, created_at, updated_at, indexed_at, machine"
    )
    # Index of the first column after COLUMNS in a row that appends more (a chunk count).
    NCOLS = 17

    @classmethod
    def from_row(cls, row: Any, chunk_count: int = 0) -> "Source":
        vals = list(row[:cls.NCOLS])
        vals[12] = json.loads(vals[12] or "{}")
        return cls(*vals, chunk_count=chunk_count)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Hit:
    chunk_id: int
    source_id: int
    source: str
    title: str | None
    kind: str
    locator: dict[str, Any]
    score: float
    text: str
    privacy: str
    fts_rank: int | None = None
    vector_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ForgetReceipt:
    """What a forget removed, each count read from the tables before the rows went."""

    sources: list[dict[str, Any]] = field(default_factory=list)  # id, uri, kind, title, derived
    documents: int = 0
    chunks: int = 0
    fts_rows: int = 0  # rows the full-text index held for those chunks
    vectors: int = 0
    links: int = 0  # outgoing links of those sources and derivation records naming them
    derived_sources: int = 0
    files_removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
