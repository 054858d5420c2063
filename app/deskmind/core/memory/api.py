"""What the rest of Deskmind may ask of the memory, whichever backend holds it.

:class:`Memory` lists the public surface used outside ``core/memory``: the SQLite store
(:class:`~deskmind.core.memory.store.MemoryStore`) and the PostgreSQL store both implement it,
and :func:`~deskmind.core.memory.backend.open_memory` returns one or the other. Every method
blocks on I/O: call it from any thread but the GUI's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np

from deskmind.core.memory.models import ForgetReceipt, Source, SourceDraft

if TYPE_CHECKING:
    from deskmind.core.embed.base import Embedder
    from deskmind.core.memory.audit import AgentAuditLog, GatewayAuditLog
    from deskmind.core.memory.clients import ClientStore
    from deskmind.core.memory.ingest_state import IngestStateStore
    from deskmind.core.memory.ledger import EgressLedgerStore
    from deskmind.core.memory.links import LinkStore
    from deskmind.core.memory.machine import MachineScope
    from deskmind.core.memory.search import SearchFilters, SearchResult
    from deskmind.core.memory.sql import SqlRunner
    from deskmind.core.memory.staging import StagedChunks
    from deskmind.core.memory.vectors import VectorIndex


class Searcher(Protocol):
    """Hybrid (full-text + vector) search fused with the same reciprocal rank fusion."""

    def search(self, query: str, limit: int = 10, filters: "SearchFilters | None" = None,
               mode: str = "hybrid", query_vector: np.ndarray | None = None) -> "SearchResult": ...


@runtime_checkable
class Memory(Protocol):
    backend: str   # "sqlite" or "postgres"
    url: str       # where it lives; never holds a password (see urls.redact_url)

    # The SQL runner and the domain repositories built on it.
    sql: "SqlRunner"
    clients: "ClientStore"
    gateway_audit: "GatewayAuditLog"
    agent_audit: "AgentAuditLog"
    egress: "EgressLedgerStore"
    links: "LinkStore"
    ingest_state: "IngestStateStore"
    # This installation's machine: a file path means this machine's file (core/memory/machine.py).
    scope: "MachineScope"
    # Large sources staged batch by batch, published by ``put_source(..., staged=stage)``.
    staging: "StagedChunks"

    # -- sources ----------------------------------------------------------------------
    def put_source(self, draft: SourceDraft, idx: "VectorIndex | None" = None,
                   new_vectors: dict[str, np.ndarray] | None = None,
                   staged: int | None = None) -> int: ...
    def get_source(self, source_id: int) -> Source | None: ...
    def document_text(self, source_id: int) -> str | None: ...
    def extractor_of(self, source_id: int) -> str | None: ...
    def source_id_by_uri(self, uri: str) -> int | None: ...
    def chunks_of(self, source_id: int) -> list[tuple[int, dict[str, Any], str]]: ...
    def chunk(self, chunk_id: int) -> tuple[int, int, int, str, dict[str, Any]] | None: ...
    def derived_from(self, source_id: int) -> list[tuple[int, str, str]]: ...
    def list_sources(self, *, kind: str | None = None, status: str | None = None,
                     limit: int | None = None) -> list[Source]: ...
    def recent_sources(self, privacy: Sequence[str], kinds: Sequence[str] | None = None,
                       limit: int = 10, preview_chars: int = 200) -> list[tuple]: ...
    def sources_of_chunks(self, chunk_ids: Iterable[int]) -> set[int]: ...
    def resolve(self, ref: str | int) -> list[int]: ...
    def forget(self, ref: str | int, *,
               remove_files: Callable[[Source], list[str]] | None = None) -> ForgetReceipt: ...
    def forget_ids(self, ids: Sequence[int], *,
                   remove_files: Callable[[Source], list[str]] | None = None) -> ForgetReceipt: ...

    # -- vectors and search -----------------------------------------------------------
    def active_index(self) -> "VectorIndex | None": ...
    def ensure_active_index(self, model_id: str, dim: int) -> "VectorIndex": ...
    def reusable_vectors(self, idx: "VectorIndex", hashes: Iterable[str]) -> set[str]: ...
    def warm_vectors(self) -> None: ...
    def searcher(self, embedder_for: "Callable[[str], Embedder] | None") -> Searcher: ...

    # -- looking after it -------------------------------------------------------------
    def stats(self) -> dict[str, Any]: ...
    def machines(self) -> dict[str, str]:
        """``machine id -> host name`` of the machines that indexed files into this memory."""
        ...
    def is_empty(self) -> bool: ...
    def self_check(self) -> str: ...
    def integrity_check(self) -> list[str]: ...
    def optimize(self, *, reindex: bool = False) -> dict[str, Any]:
        """Reclaim space and refresh statistics (VACUUM); ``reindex`` also rebuilds indexes.
        Returns what was done and the size before and after (``bytes_before``/``_after``)."""
        ...
    def backup(self, dest: Path) -> Path: ...
    def data_version(self) -> int:
        """A cheap number that changes whenever anyone (this process, another process,
        another machine) committed a change since it was last read."""
        ...
    def close(self) -> None: ...
    def __enter__(self) -> "Memory": ...
    def __exit__(self, *exc: object) -> None: ...
