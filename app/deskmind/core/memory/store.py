"""The memory store: sources, their text, chunks, the FTS index and the vector indexes.

One instance per process. Writes go through :class:`~deskmind.core.memory.writer.Writer`
(one thread, one connection); reads use a connection per calling thread. Every public method
may be called from any thread except the GUI thread (they block on I/O).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from deskmind.core.errors import StorageError, UserInputError
from deskmind.core.memory import db, maintenance, migrations, staging, vectors
from deskmind.core.memory.audit import AgentAuditLog, GatewayAuditLog
from deskmind.core.memory.clients import ClientStore
from deskmind.core.memory.ingest_state import IngestStateStore
from deskmind.core.memory.ledger import EgressLedgerStore
from deskmind.core.memory.links import LinkStore
from deskmind.core.memory.machine import Machine, MachineScope, machine_names
from deskmind.core.memory.models import ForgetReceipt, Source, SourceDraft
from deskmind.core.memory.sources import SourceReads
from deskmind.core.memory.sql import SqliteRunner
from deskmind.core.memory.writer import Writer

log = logging.getLogger(__name__)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class SourcesGone(LookupError):
    """A draft says it was derived from sources that are no longer in memory (forgotten while
    it was being made): storing it would keep what was forgotten."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__(f"derived from sources no longer in memory: {', '.join(map(str, ids))}")
        self.ids = ids


class MemoryStore(SourceReads):
    """The SQLite backend of :class:`~deskmind.core.memory.api.Memory`."""

    backend = "sqlite"

    def __init__(self, path: Path | str, *, machine: Machine | Path | None = None) -> None:
        """``machine``: this installation (default: the data folder's machine id), which file
        sources are stored under."""
        self.scope = MachineScope(machine)
        self.path = Path(path) if str(path) != ":memory:" else path
        self.url = f"sqlite://{self.path}"
        if isinstance(self.path, Path) and self.path.exists() and not db.file_is_sqlite(self.path):
            raise StorageError(
                f"{self.path} is not a Deskmind memory database (its header is not SQLite's). "
                "Nothing was changed; move it aside or set DESKMIND_HOME to another folder"
            )
        self.writer = Writer(self.path)
        try:
            self.writer.call(lambda conn: migrations.migrate(conn, lambda: self.scope.id))
        except BaseException:
            self.writer.close()
            raise
        self._local = threading.local()
        self._readers: list[tuple[threading.Thread, Any]] = []
        self._readers_lock = threading.Lock()
        self._version_conn: Any = None
        self._version_lock = threading.Lock()
        self.vector_searcher = vectors.VectorSearcher()
        # The domain repositories, all written against the runner (see sql.py).
        self.sql = SqliteRunner(self)
        self.clients = ClientStore(self.sql)
        self.gateway_audit = GatewayAuditLog(self.sql)
        self.agent_audit = AgentAuditLog(self.sql)
        self.egress = EgressLedgerStore(self.sql)
        self.links = LinkStore(self.sql)
        self.ingest_state = IngestStateStore(self.sql, self.scope)
        self.staging = staging.StagedChunks(self.sql, vectors.to_blob)

    # -- connections -------------------------------------------------------------------

    def reader(self) -> Any:
        """This thread's read connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = db.connect(self.path)
            self._local.conn = conn
            with self._readers_lock:
                # Threads come and go (executors, one-off workers): close the connections of
                # those that ended, or every short-lived thread would leak one.
                alive = []
                for thread, old in self._readers:
                    if thread.is_alive():
                        alive.append((thread, old))
                    else:
                        _close_quietly(old)
                alive.append((threading.current_thread(), conn))
                self._readers = alive
        return conn

    def data_version(self) -> int:
        """Changes whenever a change was committed since the last call, by this process's
        writer or by another process. One connection of its own answers (SQLite's
        ``PRAGMA data_version`` counts commits by other connections), so every thread sees
        the same sequence."""
        with self._version_lock:
            if self._version_conn is None:
                self._version_conn = db.connect(self.path)
            return self._version_conn.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        with self._version_lock:
            if self._version_conn is not None:
                _close_quietly(self._version_conn)
                self._version_conn = None
        with self._readers_lock:
            for _thread, conn in self._readers:
                _close_quietly(conn)
            self._readers.clear()
        self.writer.close()

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- vector indexes ----------------------------------------------------------------

    def active_index(self) -> vectors.VectorIndex | None:
        return vectors.active_index(self.reader())

    def ensure_active_index(self, model_id: str, dim: int) -> vectors.VectorIndex:
        """The active index, created for this model when the store has none yet."""

        def _ensure(conn: Any) -> vectors.VectorIndex:
            idx = vectors.active_index(conn)
            if idx is None:
                idx = vectors.create_index(conn, model_id, dim, "active")
            return idx

        return self.writer.transaction(_ensure)

    # -- writing sources ---------------------------------------------------------------

    def reusable_vectors(self, idx: vectors.VectorIndex, hashes: Iterable[str]) -> set[str]:
        """Which of these chunk text hashes already have a vector in ``idx``."""
        hs = sorted(set(hashes))
        if not hs:
            return set()
        try:
            rows = self.reader().execute(
                f"SELECT DISTINCT c.text_hash FROM chunks c JOIN {idx.float_table} v "
                "ON v.chunk_id = c.id WHERE c.text_hash IN (SELECT value FROM json_each(?))",
                (json.dumps(hs),),
            ).fetchall()
        except db.OperationalError:
            if vectors.get_index(self.reader(), idx.id) is None:
                return set()  # a re-embed swapped that index out just now: nothing to reuse
            raise
        return {r[0] for r in rows}

    def put_source(
        self,
        draft: SourceDraft,
        idx: vectors.VectorIndex | None = None,
        new_vectors: dict[str, np.ndarray] | None = None,
        staged: int | None = None,
    ) -> int:
        """Store a source with its text and chunks, replacing what it had, in one transaction.

        ``staged``: the chunks (and their vectors) are those of that stage
        (:class:`~deskmind.core.memory.staging.StagedChunks`), moved in by SQL without passing
        through Python; ``draft.chunks`` is then empty. The stage is gone afterwards.

        ``new_vectors`` maps chunk text hashes to vectors for ``idx``; chunks whose text already
        has a vector in ``idx`` reuse it (no embedding work for unchanged text). Raises
        :class:`SourcesGone`, storing nothing, when a source in ``draft.derived_from`` is gone,
        or when ``draft.replaces`` names a source that is no longer there under ``draft.uri``.
        """
        new_vectors = new_vectors or {}
        parents = sorted({int(p) for p in draft.derived_from})

        def _put(conn: Any) -> int:
            nonlocal idx, new_vectors
            if parents:
                have = {r[0] for r in conn.execute(
                    "SELECT id FROM sources WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(parents),))}
                if len(have) < len(parents):
                    raise SourcesGone([p for p in parents if p not in have])
            if idx is not None and vectors.get_index(conn, idx.id) is None:
                # A re-embed swapped ``idx`` out since the caller looked it up. Vectors made by
                # the same model still fit the new active index; others would not.
                active = vectors.active_index(conn)
                fits = active is not None and (active.model_id, active.dim) == (idx.model_id, idx.dim)
                if not fits:
                    new_vectors = {}
                    if staged is not None:
                        conn.execute("UPDATE staged_chunks SET embedding = NULL WHERE stage_id = ?", (staged,))
                idx = active
            if staged is not None:
                staging.check_stage(conn, staged, draft.uri)
                if idx is not None:
                    _fill_staged_vectors(conn, idx, staged)  # before this source's old chunks go
            now = time.time()
            machine = self.scope.key(draft.uri)
            if machine:
                self.scope.register(conn)
            row = conn.execute("SELECT id FROM sources WHERE uri = ? AND machine = ?",
                               (draft.uri, machine)).fetchone()
            if draft.replaces is not None and (row is None or row[0] != draft.replaces):
                raise SourcesGone([draft.replaces])
            meta = json.dumps(draft.metadata, ensure_ascii=False, default=str)
            if row is None:
                cur = conn.execute(
                    "INSERT INTO sources(uri, kind, title, content_hash, size, mtime, privacy, "
                    "status, error, collection, parent_id, metadata, created_at, updated_at, "
                    "indexed_at, machine) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'indexed', NULL, ?, ?, ?, ?, ?, ?, ?)",
                    (draft.uri, draft.kind, draft.title, draft.content_hash, draft.size,
                     draft.mtime, draft.privacy, draft.collection, draft.parent_id, meta,
                     now, now, now, machine),
                )
                sid = cur.lastrowid
                old: dict[str, int] = {}
            else:
                sid = row[0]
                old = {h: cid for cid, h in conn.execute(
                    "SELECT id, text_hash FROM chunks WHERE source_id = ?", (sid,))}
                carried = _carry_old_vectors(conn, idx, old) if idx and staged is None else {}
                conn.execute("DELETE FROM chunks WHERE source_id = ?", (sid,))
                conn.execute(
                    "UPDATE sources SET kind=?, title=?, content_hash=?, size=?, mtime=?, "
                    "privacy=?, status='indexed', error=NULL, collection=?, parent_id=?, "
                    "metadata=?, updated_at=?, indexed_at=? WHERE id=?",
                    (draft.kind, draft.title, draft.content_hash, draft.size, draft.mtime,
                     draft.privacy, draft.collection, draft.parent_id, meta, now, now, sid),
                )
                for h, vec in carried.items():
                    new_vectors.setdefault(h, vec)
            conn.execute(
                "INSERT OR REPLACE INTO documents(source_id, text, extractor) VALUES (?, ?, ?)",
                (sid, draft.text, draft.extractor),
            )
            if row is not None:
                conn.execute("DELETE FROM source_derivations WHERE source_id = ?", (sid,))
            conn.executemany(
                "INSERT INTO source_derivations(source_id, parent_id) VALUES (?, ?)",
                [(sid, p) for p in parents if p != sid])
            if staged is not None:
                _publish_staged(conn, idx, sid, staged, now)
                return sid
            ids: list[int] = []
            hashes: list[str] = []
            for ord_, ch in enumerate(draft.chunks):
                h = text_hash(ch.text)
                cur = conn.execute(
                    "INSERT INTO chunks(source_id, ord, text, locator, text_hash, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (sid, ord_, ch.text, json.dumps(ch.locator, ensure_ascii=False), h, now),
                )
                ids.append(cur.lastrowid)
                hashes.append(h)
            if idx is not None and ids:
                _store_vectors(conn, idx, ids, hashes, new_vectors)
            return sid

        sid = self.writer.transaction(_put)
        self.scope.committed([draft.uri])
        return sid

    # -- forgetting --------------------------------------------------------------------

    def forget(self, ref: str | int, *, remove_files: Callable[[Source], list[str]] | None = None) -> ForgetReceipt:
        """Remove sources and everything derived from them; return a receipt of what went.

        ``remove_files`` may delete files Deskmind itself made for a source (audio of a note);
        the person's own files are never touched.
        """
        ids = self.resolve(ref)
        if not ids:
            raise UserInputError(f"nothing in memory matches '{ref}' (try 'deskmind sources')")
        return self.forget_ids(ids, remove_files=remove_files)

    def forget_ids(self, ids: Sequence[int], *, remove_files: Callable[[Source], list[str]] | None = None) -> ForgetReceipt:
        def _forget(conn: Any) -> ForgetReceipt:
            receipt = ForgetReceipt()
            # Derived: children by parent_id (minutes of a meeting) and sources made from several
            # (a conversation from those it cited), to any depth.
            tree = conn.execute(
                "WITH RECURSIVE t(id, depth) AS (SELECT value, 0 FROM json_each(?) "
                "UNION SELECT s.id, t.depth + 1 FROM sources s JOIN t ON s.parent_id = t.id "
                "UNION SELECT d.source_id, t.depth + 1 FROM source_derivations d "
                "JOIN t ON d.parent_id = t.id) "
                "SELECT id, min(depth) FROM t GROUP BY id",
                (json.dumps(list(ids)),),
            ).fetchall()
            depth = dict(tree)
            all_ids = json.dumps([r[0] for r in tree])
            receipt.derived_sources = sum(1 for r in tree if r[1] > 0)
            for row in conn.execute(
                f"SELECT {Source.COLUMNS} FROM sources WHERE id IN (SELECT value FROM json_each(?)) "
                "ORDER BY id", (all_ids,),
            ).fetchall():
                src = Source.from_row(row)
                receipt.sources.append({"id": src.id, "uri": src.uri, "kind": src.kind,
                                        "title": src.title, "derived": depth[src.id] > 0})
                if remove_files:
                    receipt.files_removed.extend(remove_files(src))
            in_ids = "(SELECT value FROM json_each(?))"
            in_chunks = f"(SELECT id FROM chunks WHERE source_id IN {in_ids})"
            receipt.documents = conn.execute(
                f"SELECT count(*) FROM documents WHERE source_id IN {in_ids}", (all_ids,)).fetchone()[0]
            receipt.chunks = conn.execute(
                f"SELECT count(*) FROM chunks WHERE source_id IN {in_ids}", (all_ids,)).fetchone()[0]
            # The full-text index's own per-row table: what it holds, not what it should hold.
            receipt.fts_rows = conn.execute(
                f"SELECT count(*) FROM chunks_fts_docsize WHERE id IN {in_chunks}", (all_ids,)).fetchone()[0]
            receipt.links = conn.execute(
                f"SELECT count(*) FROM source_links WHERE source_id IN {in_ids}", (all_ids,)).fetchone()[0]
            receipt.links += conn.execute(
                f"SELECT count(*) FROM source_derivations WHERE source_id IN {in_ids} "
                f"OR parent_id IN {in_ids}", (all_ids, all_ids)).fetchone()[0]
            for idx in ([vectors.active_index(conn)] + vectors.building_indexes(conn)):
                if idx is None:
                    continue
                receipt.vectors += conn.execute(
                    f"SELECT count(*) FROM {idx.float_table} WHERE chunk_id IN "
                    f"(SELECT id FROM chunks WHERE source_id IN {in_ids})", (all_ids,)).fetchone()[0]
            # Chunks (and through triggers their FTS rows and vectors) go with their sources.
            conn.execute(f"DELETE FROM sources WHERE id IN {in_ids}", (all_ids,))
            return receipt

        return self.writer.transaction(_forget)

    # -- maintenance (see maintenance.py) ---------------------------------------------

    def stats(self) -> dict[str, Any]:
        return maintenance.stats(self)

    def machines(self) -> dict[str, str]:
        """``machine id -> host name`` of the machines that indexed files into this memory."""
        return machine_names(self.sql)

    def is_empty(self) -> bool:
        """True when memory holds no searchable passage yet (a first run)."""
        return self.reader().execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None

    def self_check(self) -> str:
        """What this backend's engine offers, checked on a scratch database: FTS5 and
        sqlite-vec must work. Raises StorageError when one does not."""
        return maintenance.self_check()

    def searcher(self, embedder_for: Callable[[str], Any] | None) -> Any:
        """Hybrid search over this store (FTS5, sqlite-vec and the in-memory vector copy)."""
        from deskmind.core.memory.search import HybridSearcher

        return HybridSearcher(self, embedder_for)

    def warm_vectors(self) -> None:
        """Load the active index's in-memory vector copy now (blocking: a worker thread)."""
        idx = self.active_index()
        if idx is not None:
            self.vector_searcher.warm(self.reader(), idx)

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check`` plus an FTS5 consistency check; [] when healthy."""
        return maintenance.integrity_check(self)

    def optimize(self, *, reindex: bool = False) -> dict[str, Any]:
        """Merge the full-text index, refresh statistics and VACUUM (see maintenance)."""
        return maintenance.optimize(self, reindex=reindex)

    def backup(self, dest: Path) -> Path:
        """A consistent copy made with SQLite's backup API, safe while others read and write."""
        return maintenance.backup(self, dest)


def _fill_staged_vectors(conn: Any, idx: vectors.VectorIndex, stage: int) -> None:
    """Give staged chunks staged without a vector the vector of the same text: in memory
    already (this source's old chunks included) or staged earlier in this stage."""
    conn.execute(
        f"UPDATE staged_chunks SET embedding = (SELECT v.embedding FROM chunks c "
        f"JOIN {idx.float_table} v ON v.chunk_id = c.id WHERE c.text_hash = staged_chunks.text_hash "
        "LIMIT 1) WHERE stage_id = ? AND embedding IS NULL", (stage,))
    conn.execute(
        "UPDATE staged_chunks SET embedding = (SELECT s.embedding FROM staged_chunks s "
        "WHERE s.stage_id = staged_chunks.stage_id AND s.text_hash = staged_chunks.text_hash "
        "AND s.embedding IS NOT NULL LIMIT 1) WHERE stage_id = ? AND embedding IS NULL", (stage,))


def _publish_staged(conn: Any, idx: vectors.VectorIndex | None, sid: int, stage: int, now: float) -> None:
    """Move a stage's chunks and vectors to source ``sid`` (whose old chunks are gone)."""
    conn.execute(
        "INSERT INTO chunks(source_id, ord, text, locator, text_hash, created_at) "
        "SELECT ?, ord, text, locator, text_hash, ? FROM staged_chunks WHERE stage_id = ? ORDER BY ord",
        (sid, now, stage))
    if idx is not None:
        conn.execute(
            f"INSERT INTO {idx.float_table}(chunk_id, embedding) SELECT c.id, s.embedding "
            "FROM staged_chunks s JOIN chunks c ON c.source_id = ? AND c.ord = s.ord "
            "WHERE s.stage_id = ? AND s.embedding IS NOT NULL", (sid, stage))
        conn.execute(
            f"INSERT INTO {idx.bits_table}(rowid, embedding) SELECT v.chunk_id, "
            f"vec_quantize_binary(v.embedding) FROM {idx.float_table} v "
            "JOIN chunks c ON c.id = v.chunk_id WHERE c.source_id = ?", (sid,))
    staging.drop_stage(conn, stage)


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except db.DatabaseError:
        pass


def _carry_old_vectors(conn: Any, idx: vectors.VectorIndex, old: dict[str, int]) -> dict[str, np.ndarray]:
    """Vectors of a source's current chunks by text hash, read before they are deleted."""
    if not old:
        return {}
    ids, mat = vectors.fetch_floats(conn, idx, list(old.values()))
    by_id = dict(zip(ids, mat))
    return {h: by_id[cid].copy() for h, cid in old.items() if cid in by_id}


def _store_vectors(conn: Any, idx: vectors.VectorIndex, ids: list[int], hashes: list[str],
                   new_vectors: dict[str, np.ndarray]) -> None:
    have = [(cid, new_vectors[h]) for cid, h in zip(ids, hashes) if h in new_vectors]
    if have:
        vectors.insert_vectors(conn, idx, [c for c, _ in have], np.stack([v for _, v in have]))
    missing = [(cid, h) for cid, h in zip(ids, hashes) if h not in new_vectors]
    if missing:
        # Same text elsewhere in memory: copy its vector instead of embedding again.
        pairs = []
        for cid, h in missing:
            row = conn.execute(
                f"SELECT c.id FROM chunks c JOIN {idx.float_table} v ON v.chunk_id = c.id "
                "WHERE c.text_hash = ? AND c.id != ? LIMIT 1", (h, cid)).fetchone()
            if row:
                pairs.append((cid, row[0]))
        copied = vectors.copy_vectors(conn, idx, pairs)
        if copied < len(missing):
            log.debug("%d chunks stored without a vector (to be embedded)", len(missing) - copied)
