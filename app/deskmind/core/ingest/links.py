"""Edges between sources (Markdown links, wikilinks, embeds) and collections (Obsidian vaults).

Tables come from migration m010. Link targets are stored as written-and-resolved text:
an absolute path for Markdown links, a note name for wikilinks. Wikilinks resolve when read,
inside the linking source's collection, the way Obsidian does (by file name, anywhere in the
vault), so a note created after the link was written still receives it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deskmind.core.ingest.types import Link
from deskmind.core.memory.models import SourceDraft
from deskmind.core.memory.store import MemoryStore

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


def ensure_collection(store: MemoryStore, root: Path, kind: str = "obsidian") -> str:
    """The collection name for a vault root, registering it on first sight."""
    root_s = str(root)
    row = store.reader().execute("SELECT name FROM collections WHERE root = ?", (root_s,)).fetchone()
    if row:
        return row[0]

    def _add(conn: Any) -> str:
        row = conn.execute("SELECT name FROM collections WHERE root = ?", (root_s,)).fetchone()
        if row:
            return row[0]
        base = root.name or root_s
        name, n = base, 1
        while conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone():
            n += 1
            name = f"{base} ({n})"
        conn.execute("INSERT INTO collections(name, kind, root, created_at) VALUES (?, ?, ?, ?)",
                     (name, kind, root_s, time.time()))
        return name

    return store.writer.transaction(_add)


def collections(store: MemoryStore) -> list[dict[str, Any]]:
    rows = store.reader().execute(
        "SELECT c.name, c.kind, c.root, (SELECT count(*) FROM sources s WHERE s.collection = c.name) "
        "FROM collections c ORDER BY c.name").fetchall()
    return [{"name": r[0], "kind": r[1], "root": r[2], "sources": r[3]} for r in rows]


def _write_links(conn: Any, sid: int, links: list[Link]) -> None:
    conn.execute("DELETE FROM source_links WHERE source_id = ?", (sid,))
    seen = set()
    for ln in links:
        key = (ln.kind, ln.target)
        if key not in seen:
            seen.add(key)
            conn.execute(
                "INSERT INTO source_links(source_id, kind, target, text) VALUES (?, ?, ?, ?)",
                (sid, ln.kind, ln.target, ln.text))


def put_source_with_links(store: MemoryStore, draft: SourceDraft, idx: Any,
                          vectors: dict[str, Any], links: list[Link]) -> int:
    """``store.put_source`` and the source's outgoing links in one transaction: a kill
    in between cannot leave new chunks with old links (the file would look unchanged after)."""

    def _put(conn: Any) -> int:
        sid = store.put_source(draft, idx, vectors)  # nested: joins this transaction
        _write_links(conn, sid, links)
        return sid

    return store.writer.transaction(_put)


_RESOLVE = """
    CASE WHEN l.kind = 'link' OR l.target LIKE '/%'
         THEN (SELECT t.id FROM sources t WHERE t.uri = l.target)
         ELSE (SELECT t.id FROM sources t WHERE t.collection = s.collection
               AND s.collection IS NOT NULL
               AND (lower(t.uri) LIKE '%/' || lower(l.target) || '.md'
                    OR lower(t.uri) LIKE '%/' || lower(l.target))
               ORDER BY length(t.uri) LIMIT 1)
    END
"""


def outgoing(store: MemoryStore, source_id: int) -> list[Edge]:
    rows = store.reader().execute(
        f"SELECT l.source_id, l.kind, l.target, l.text, {_RESOLVE} FROM source_links l "
        "JOIN sources s ON s.id = l.source_id WHERE l.source_id = ? ORDER BY l.rowid",
        (source_id,)).fetchall()
    return [Edge(*r) for r in rows]


def backlinks(store: MemoryStore, source_id: int) -> list[Edge]:
    """Edges from other sources that point at this one."""
    conn = store.reader()
    row = conn.execute("SELECT uri, collection FROM sources WHERE id = ?", (source_id,)).fetchone()
    if row is None:
        return []
    uri, coll = row
    stem = Path(uri).stem.lower()
    name = Path(uri).name.lower()
    rows = conn.execute(
        "SELECT l.source_id, l.kind, l.target, l.text FROM source_links l "
        "JOIN sources s ON s.id = l.source_id WHERE l.target = ? "
        "OR (l.kind != 'link' AND s.collection IS ? AND s.collection IS NOT NULL "
        "    AND lower(l.target) IN (?, ?)) ORDER BY l.source_id",
        (uri, coll, stem, name)).fetchall()
    return [Edge(r[0], r[1], r[2], r[3], source_id) for r in rows]

