"""Reading sources and chunks from the SQLite store: lookups by id and uri, listings, states
for re-scans, and resolving what a person refers to (an id, a uri, a file, a folder).

A mixin of :class:`~deskmind.core.memory.store.MemoryStore`; every method reads through the
calling thread's connection (``self.reader()``) and may run on any thread but the GUI's.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Sequence

from deskmind.core.memory.machine import MachineScope
from deskmind.core.memory.models import Source
from deskmind.core.memory.refs import resolve_candidates


class SourceReads:
    reader: Callable[[], Any]  # the store's read connection for the calling thread
    scope: MachineScope  # this machine: a file path means this machine's file

    def document_text(self, source_id: int) -> str | None:
        """The whole stored text of a source, or None when it kept no document text."""
        row = self.reader().execute(
            "SELECT text FROM documents WHERE source_id = ?", (source_id,)).fetchone()
        return row[0] if row else None

    def extractor_of(self, source_id: int) -> str | None:
        """The extractor that made a source's stored text (None when it kept no text)."""
        row = self.reader().execute(
            "SELECT extractor FROM documents WHERE source_id = ?", (source_id,)).fetchone()
        return row[0] if row else None

    def source_id_by_uri(self, uri: str) -> int | None:
        row = self.reader().execute("SELECT id FROM sources WHERE uri = ? AND machine = ?",
                                    (uri, self.scope.key(uri))).fetchone()
        return row[0] if row else None

    def chunk(self, chunk_id: int) -> tuple[int, int, int, str, dict[str, Any]] | None:
        """``(chunk id, source id, ord, text, locator)`` of one chunk, or None."""
        row = self.reader().execute(
            "SELECT id, source_id, ord, text, locator FROM chunks WHERE id = ?",
            (int(chunk_id),)).fetchone()
        if row is None:
            return None
        return row[0], row[1], row[2], row[3], json.loads(row[4] or "{}")

    def recent_sources(self, privacy: Sequence[str], kinds: Sequence[str] | None = None,
                       limit: int = 10, preview_chars: int = 200) -> list[tuple]:
        """Indexed sources, most recently updated first: ``(id, uri, kind, title, privacy,
        updated_at, the first preview_chars of their text)``. ``kinds`` None means any."""
        where = "privacy IN (SELECT value FROM json_each(?)) AND status = 'indexed'"
        params: list[Any] = [json.dumps(list(privacy))]
        if kinds is not None:
            where += " AND kind IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(kinds)))
        return self.reader().execute(
            "SELECT s.id, s.uri, s.kind, s.title, s.privacy, s.updated_at, "
            "substr(d.text, 1, ?) FROM sources s LEFT JOIN documents d ON d.source_id = s.id "
            f"WHERE {where} ORDER BY s.updated_at DESC LIMIT ?",
            (int(preview_chars), *params, int(limit))).fetchall()

    def get_source(self, source_id: int) -> Source | None:
        conn = self.reader()
        row = conn.execute(f"SELECT {Source.COLUMNS} FROM sources WHERE id = ?", (source_id,)).fetchone()
        if row is None:
            return None
        n = conn.execute("SELECT count(*) FROM chunks WHERE source_id = ?", (source_id,)).fetchone()[0]
        return Source.from_row(row, n)

    def chunks_of(self, source_id: int) -> list[tuple[int, dict[str, Any], str]]:
        """``(chunk id, locator, text)`` of a source, in order."""
        return [(r[0], json.loads(r[1] or "{}"), r[2]) for r in self.reader().execute(
            "SELECT id, locator, text FROM chunks WHERE source_id = ? ORDER BY id", (source_id,))]

    def derived_from(self, source_id: int) -> list[tuple[int, str, str]]:
        """``(id, kind, title or uri)`` of the sources made from this one (a meeting's minutes)."""
        return [(r[0], r[1], r[2]) for r in self.reader().execute(
            "SELECT id, kind, coalesce(title, uri) FROM sources WHERE parent_id = ? ORDER BY id", (source_id,))]

    def list_sources(
        self, *, kind: str | None = None, status: str | None = None, limit: int | None = None,
    ) -> list[Source]:
        where, args = [], []
        if kind:
            where.append("s.kind = ?")
            args.append(kind)
        if status:
            where.append("s.status = ?")
            args.append(status)
        sql = (
            f"SELECT {', '.join('s.' + c.strip() for c in Source.COLUMNS.split(','))}, "
            "(SELECT count(*) FROM chunks c WHERE c.source_id = s.id) FROM sources s"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY s.updated_at DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [Source.from_row(r, r[Source.NCOLS]) for r in self.reader().execute(sql, args)]

    def sources_of_chunks(self, chunk_ids: Iterable[int]) -> set[int]:
        """The sources these chunks (still) belong to."""
        ids = sorted({int(c) for c in chunk_ids})
        if not ids:
            return set()
        return {r[0] for r in self.reader().execute(
            "SELECT DISTINCT source_id FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),))}

    def resolve(self, ref: str | int) -> list[int]:
        """Source ids for a reference: an id, a uri, a file path, or a folder (everything under
        it). A path or folder means this machine's files; an id means the same everywhere."""
        conn = self.reader()
        for kind, value in resolve_candidates(ref):
            if kind == "prefix":
                found: set[int] = set()
                for prefix in value:
                    found.update(r[0] for r in conn.execute(
                        "SELECT id FROM sources WHERE machine = ? AND substr(uri, 1, ?) = ?",
                        (self.scope.id, len(prefix), prefix)).fetchall())
                if found:
                    return sorted(found)
            elif kind == "id":
                row = conn.execute("SELECT id FROM sources WHERE id = ?", (value,)).fetchone()
                if row:
                    return [row[0]]
            else:
                row = conn.execute("SELECT id FROM sources WHERE uri = ? AND machine = ?",
                                   (value, self.scope.key(str(value)))).fetchone()
                if row:
                    return [row[0]]
        return []
