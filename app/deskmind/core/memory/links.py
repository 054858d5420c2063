"""Collections (an Obsidian vault indexed as one whole) and the edges between sources
(tables ``collections`` and ``source_links``)."""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any, Sequence

from deskmind.core.memory.sql import SqlRunner

# kind, target, text
LinkRow = tuple[str, str, str | None]

# The LIKE wildcard goes in as an argument: repository SQL holds no literal '%'.
_ANY = "%"

# A wikilink resolves inside the linking source's collection by file name, the way Obsidian
# does; a Markdown link (an absolute path) by uri. Both among the linking source's machine's
# files (the same vault indexed on two machines links within each).
_RESOLVE = """
    CASE WHEN l.kind = 'link' OR substr(l.target, 1, 1) = '/'
         THEN (SELECT t.id FROM sources t WHERE t.uri = l.target AND t.machine = s.machine)
         ELSE (SELECT t.id FROM sources t WHERE t.collection = s.collection
               AND s.collection IS NOT NULL AND t.machine = s.machine
               AND (lower(t.uri) LIKE ? || '/' || lower(l.target) || '.md'
                    OR lower(t.uri) LIKE ? || '/' || lower(l.target))
               ORDER BY length(t.uri) LIMIT 1)
    END
"""


class LinkStore:
    def __init__(self, sql: SqlRunner) -> None:
        self.sql = sql

    # -- collections ------------------------------------------------------------------

    def collection_at(self, root: str) -> str | None:
        row = self.sql.query_one("SELECT name FROM collections WHERE root = ?", (root,))
        return row[0] if row else None

    def ensure_collection(self, root: str, base: str, kind: str) -> str:
        """The collection registered for ``root``, registering it as ``base`` (or
        ``base (2)``, … when that name is taken) on first sight."""

        def _add(tx: Any) -> str:
            row = tx.execute("SELECT name FROM collections WHERE root = ?", (root,)).fetchone()
            if row:
                return row[0]
            name, n = base, 1
            while tx.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone():
                n += 1
                name = f"{base} ({n})"
            tx.execute("INSERT INTO collections(name, kind, root, created_at) VALUES (?, ?, ?, ?)",
                       (name, kind, root, time.time()))
            return name

        return self.sql.write(_add)

    def collections(self) -> list[tuple[str, str, str, int]]:
        """``(name, kind, root, number of sources)`` by name."""
        return self.sql.query(
            "SELECT c.name, c.kind, c.root, "
            "(SELECT count(*) FROM sources s WHERE s.collection = c.name) "
            "FROM collections c ORDER BY c.name")

    # -- links ------------------------------------------------------------------------

    def replace(self, source_id: int, links: Sequence[LinkRow]) -> None:
        """A source's outgoing links, replacing what it had (each kind+target once)."""
        seen: set[tuple[str, str]] = set()
        rows = []
        for kind, target, text in links:
            if (kind, target) not in seen:
                seen.add((kind, target))
                rows.append((source_id, kind, target, text))

        def _put(tx: Any) -> None:
            tx.execute("DELETE FROM source_links WHERE source_id = ?", (source_id,))
            if rows:
                tx.executemany(
                    "INSERT INTO source_links(source_id, kind, target, text) VALUES (?, ?, ?, ?)",
                    rows)

        self.sql.write(_put)

    def outgoing(self, source_id: int) -> list[tuple[int, str, str, str | None, int | None]]:
        """``(source id, kind, target, text, target id or None)``."""
        return self.sql.query(
            f"SELECT l.source_id, l.kind, l.target, l.text, {_RESOLVE} FROM source_links l "
            "JOIN sources s ON s.id = l.source_id WHERE l.source_id = ? "
            "ORDER BY l.kind, l.target", (_ANY, _ANY, source_id))

    def backlinks(self, source_id: int) -> list[tuple[int, str, str, str | None]]:
        """``(source id, kind, target, text)`` of links from other sources to this one."""
        row = self.sql.query_one("SELECT uri, collection, machine FROM sources WHERE id = ?",
                                 (source_id,))
        if row is None:
            return []
        uri, coll, machine = row
        stem, name = _stem_and_name(uri)
        return self.sql.query(
            "SELECT l.source_id, l.kind, l.target, l.text FROM source_links l "
            "JOIN sources s ON s.id = l.source_id WHERE s.machine = ? AND (l.target = ? "
            "OR (l.kind != 'link' AND s.collection = ? AND lower(l.target) IN (?, ?))) "
            "ORDER BY l.source_id", (machine, uri, coll, stem, name))


def _stem_and_name(uri: str) -> tuple[str, str]:
    p = PurePosixPath(uri)
    return p.stem.lower(), p.name.lower()
