"""Edges between sources (Markdown links, wikilinks, embeds) and collections (Obsidian vaults).

Tables come from migration m010. Link targets are stored as written-and-resolved text:
an absolute path for Markdown links, a note name for wikilinks. Wikilinks resolve when read,
inside the linking source's collection, the way Obsidian does (by file name, anywhere in the
vault), so a note created after the link was written still receives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deskmind.core.ingest.types import Link
from deskmind.core.memory.models import SourceDraft
from deskmind.core.memory.api import Memory

VAULT_MARKER = ".obsidian"


@dataclass
class Edge:
    source_id: int
    kind: str
    target: str
    text: str | None
    target_id: int | None  # None while the target is not (yet) in memory


def vault_root(path: Path, stop: Path | None = None) -> Path | None:
    """The Obsidian vault holding ``path`` (a folder with ``.obsidian/``), if any."""
    p = path if path.is_dir() else path.parent
    while True:
        if (p / VAULT_MARKER).is_dir():
            return p
        if p == stop or p.parent == p:
            return None
        p = p.parent


def ensure_collection(store: Memory, root: Path, kind: str = "obsidian") -> str:
    """The collection name for a vault root, registering it on first sight."""
    root_s = str(root)
    return store.links.collection_at(root_s) or store.links.ensure_collection(
        root_s, root.name or root_s, kind)


def collections(store: Memory) -> list[dict[str, Any]]:
    return [{"name": r[0], "kind": r[1], "root": r[2], "sources": r[3]}
            for r in store.links.collections()]


def put_source_with_links(store: Memory, draft: SourceDraft, idx: Any,
                          vectors: dict[str, Any], links: list[Link], staged: int | None = None) -> int:
    """``store.put_source`` and the source's outgoing links in one transaction: a kill
    in between cannot leave new chunks with old links (the file would look unchanged after).
    ``staged``: the chunks are those staged under that id (see ``Memory.staging``)."""

    def _put(_tx: Any) -> int:
        sid = store.put_source(draft, idx, vectors, staged=staged)  # nested: joins this transaction
        store.links.replace(sid, [(ln.kind, ln.target, ln.text) for ln in links])
        return sid

    return store.sql.write(_put)


def outgoing(store: Memory, source_id: int) -> list[Edge]:
    return [Edge(*r) for r in store.links.outgoing(source_id)]


def backlinks(store: Memory, source_id: int) -> list[Edge]:
    """Edges from other sources that point at this one."""
    return [Edge(r[0], r[1], r[2], r[3], source_id) for r in store.links.backlinks(source_id)]
