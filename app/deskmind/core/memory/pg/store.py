"""The memory on PostgreSQL + pgvector: the public surface of the SQLite ``MemoryStore``.

Any number of processes and machines may open one database: every write is one transaction
on a pooled connection (no writer thread), a source is stored or forgotten in one transaction,
and ``data_version`` tells a running app that someone, anywhere, wrote. Every method blocks on
the network: call from any thread but the GUI's.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from deskmind.core.errors import StorageError, UserInputError
from deskmind.core.memory.audit import AgentAuditLog, GatewayAuditLog
from deskmind.core.memory.clients import ClientStore
from deskmind.core.memory.ingest_state import IngestStateStore
from deskmind.core.memory.ledger import EgressLedgerStore
from deskmind.core.memory.links import LinkStore
from deskmind.core.memory.machine import Machine, MachineScope, machine_names
from deskmind.core.memory.models import ForgetReceipt, Source, SourceDraft
from deskmind.core.memory import staging
from deskmind.core.memory.pg import maintenance, migrations, vectors
from deskmind.core.memory.pg.fts import TermFrequencies
from deskmind.core.memory.pg.runner import PgRunner, PgTx
from deskmind.core.memory.refs import resolve_candidates
from deskmind.core.memory.urls import redact_url
from deskmind.core.memory.store import SourcesGone, text_hash
from deskmind.core.memory.vectors import VectorIndex

log = logging.getLogger(__name__)

# Every uri that starts with a prefix, as a range on the byte-ordered index of uris.
UNDER = 'uri COLLATE "C" >= ? AND uri COLLATE "C" < ?'
_SOURCE_COLS = ", ".join("s." + c.strip() for c in Source.COLUMNS.split(","))


class PgMemoryStore:
    backend = "postgres"

    def __init__(self, url: str, *, password: str | None = None, pool_size: int = 8,
                 connect_timeout: float = 10.0, machine: Machine | Path | None = None) -> None:
        """``url``: a ``postgresql://`` URL without a password (libpq options pass through);
        ``password``: the one from the keyring, if the server asks for one; ``machine``: this
        installation (default: the data folder's machine id), which file sources belong to."""
        self.scope = MachineScope(machine)
        self.url = redact_url(url)
        # Kept for pg_dump (backup), which connects on its own; never shown or logged.
        self._conninfo, self._password = url, password
        self._prepare(url, password, connect_timeout)
        self.sql = PgRunner(url, password=password, max_size=pool_size,
                            connect_timeout=connect_timeout, configure=register_vector,
                            settings=vectors.SESSION_SETTINGS)
        # The domain repositories, the same classes as on SQLite (their SQL is portable).
        self.clients = ClientStore(self.sql)
        self.gateway_audit = GatewayAuditLog(self.sql)
        self.agent_audit = AgentAuditLog(self.sql)
        self.egress = EgressLedgerStore(self.sql)
        self.links = LinkStore(self.sql)
        self.ingest_state = IngestStateStore(self.sql, self.scope)
        self.term_frequencies = TermFrequencies()
        self.staging = staging.StagedChunks(self.sql, lambda v: np.asarray(v, dtype=np.float32),
                                            clean=lambda t: _no_nul(t) or "")

    def _prepare(self, conninfo: str, password: str | None, timeout: float) -> None:
        """Check the server, enable pgvector and migrate, on a connection of its own (the pool's
        connections register the vector type, which needs the extension to exist first)."""
        try:
            extra = {} if password is None else {"password": password}
            conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=max(1, int(timeout)),
                                   application_name="deskmind", **extra)
        except psycopg.OperationalError as exc:
            raise StorageError(_connect_error(self.url, exc)) from exc
        try:
            migrations.migrate(conn, self.url, lambda: self.scope.id)
        finally:
            conn.close()

    def close(self) -> None:
        self.sql.close()

    def __enter__(self) -> "PgMemoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def data_version(self) -> int:
        """A counter every committed write (from any process or machine) increases."""
        return self.sql.query_one("SELECT n FROM changes")[0]

    def searcher(self, embedder_for: Callable[[str], Any] | None) -> Any:
        from deskmind.core.memory.pg.search import PgSearcher

        return PgSearcher(self, embedder_for)

    # -- vector indexes ----------------------------------------------------------------

    def active_index(self) -> VectorIndex | None:
        return self.sql.read(vectors.active_index)

    def ensure_active_index(self, model_id: str, dim: int) -> VectorIndex:
        """The active index, created for this model when the store has none yet."""

        def _ensure(tx: PgTx) -> VectorIndex:
            # Two machines starting on an empty database: one creates, the other waits and
            # finds it (the lock is on the registry, held to commit).
            tx.execute("LOCK TABLE vector_indexes IN SHARE ROW EXCLUSIVE MODE")
            idx = vectors.active_index(tx)
            return idx if idx is not None else vectors.create_index(tx, model_id, dim, "active")

        return self.sql.write(_ensure)

    def building_indexes(self) -> list[VectorIndex]:
        return self.sql.read(vectors.building_indexes)

    def reusable_vectors(self, idx: VectorIndex, hashes: Iterable[str]) -> set[str]:
        """Which of these chunk text hashes already have a vector in ``idx``."""
        hs = sorted(set(hashes))
        if not hs:
            return set()

        def _reusable(tx: PgTx) -> set[str]:
            if vectors.get_index(tx, idx.id) is None or not vectors.pin(tx, idx):
                return set()  # a re-embed swapped that index out just now: nothing to reuse
            return {r[0] for r in tx.execute(
                f"SELECT DISTINCT c.text_hash FROM chunks c JOIN {idx.float_table} v "
                "ON v.chunk_id = c.id WHERE c.text_hash = ANY(?)", (hs,)).fetchall()}

        return self.sql.read(_reusable)

    # -- writing sources ---------------------------------------------------------------

    def put_source(self, draft: SourceDraft, idx: VectorIndex | None = None,
                   new_vectors: dict[str, np.ndarray] | None = None, staged: int | None = None) -> int:
        """Store a source with its text and chunks, replacing what it had, in one transaction.

        Same contract as the SQLite store's ``put_source`` (vectors reused by text hash,
        :class:`SourcesGone` when a parent or the replaced source is gone, ``staged``: the
        chunks and vectors of that stage, moved in by SQL)."""
        given = dict(new_vectors or {})
        parents = sorted({int(p) for p in draft.derived_from})
        meta = json.dumps(draft.metadata, ensure_ascii=False, default=str)
        hashes = [text_hash(ch.text) for ch in draft.chunks]
        texts = [_no_nul(ch.text) for ch in draft.chunks]
        locators = [json.dumps(ch.locator, ensure_ascii=False) for ch in draft.chunks]

        def _put(tx: PgTx) -> int:
            target, fresh = idx, given
            # First: a re-embed's swap (which locks chunks against writes) is either done or
            # waits for this, so the index checked below stays until this commits.
            tx.execute("LOCK TABLE chunks IN ROW EXCLUSIVE MODE")
            if parents:
                # FOR SHARE: a forget of a parent running now waits for this to commit (and
                # then takes this source with it), or this waits for the forget and sees it.
                have = {r[0] for r in tx.execute(
                    "SELECT id FROM sources WHERE id = ANY(?) FOR SHARE", (parents,)).fetchall()}
                if len(have) < len(parents):
                    raise SourcesGone([p for p in parents if p not in have])
            if target is not None and vectors.get_index(tx, target.id) is None:
                active = vectors.active_index(tx)
                fits = active is not None and (active.model_id, active.dim) == (target.model_id, target.dim)
                if not fits:
                    fresh = {}
                    if staged is not None:
                        tx.execute("UPDATE staged_chunks SET embedding = NULL WHERE stage_id = ?", (staged,))
                target = active
            if target is not None and not vectors.pin(tx, target, "ROW EXCLUSIVE"):
                raise StorageError("the vector index was replaced while this was being stored: "
                                   "store it again")
            if staged is not None:
                staging.check_stage(tx, staged, draft.uri)
            now = time.time()
            machine = self.scope.key(draft.uri)
            if machine:
                self.scope.register(tx)
            sid, existed = _lock_or_insert(tx, draft, machine, meta, now)
            if draft.replaces is not None and (not existed or sid != draft.replaces):
                raise SourcesGone([draft.replaces])
            if staged is not None and target is not None:
                _fill_staged_vectors(tx, target, staged)  # before this source's old chunks go
            if existed and staged is None:
                old = dict(tx.execute(
                    "SELECT text_hash, id FROM chunks WHERE source_id = ?", (sid,)).fetchall())
                if target is not None and old:
                    ids, mat = vectors.fetch_floats(tx, target, list(old.values()))
                    by_id = dict(zip(ids, mat))
                    fresh = dict(fresh)
                    for h, cid in old.items():
                        if cid in by_id:
                            fresh.setdefault(h, by_id[cid])
            if existed:
                tx.execute("DELETE FROM chunks WHERE source_id = ?", (sid,))
                tx.execute(
                    "UPDATE sources SET kind=?, title=?, content_hash=?, size=?, mtime=?, "
                    "privacy=?, status='indexed', error=NULL, collection=?, parent_id=?, "
                    "metadata=?, updated_at=?, indexed_at=? WHERE id=?",
                    (draft.kind, _no_nul(draft.title), draft.content_hash, draft.size,
                     draft.mtime, draft.privacy, draft.collection, draft.parent_id, meta,
                     now, now, sid))
                tx.execute("DELETE FROM source_derivations WHERE source_id = ?", (sid,))
            tx.execute(
                "INSERT INTO documents(source_id, text, extractor) VALUES (?, ?, ?) "
                "ON CONFLICT (source_id) DO UPDATE SET text = excluded.text, "
                "extractor = excluded.extractor",
                (sid, _no_nul(draft.text), draft.extractor))
            tx.executemany("INSERT INTO source_derivations(source_id, parent_id) VALUES (?, ?)",
                           [(sid, p) for p in parents if p != sid])
            if staged is not None:
                _publish_staged(tx, target, sid, staged, now)
                return sid
            if not texts:
                return sid
            rows = tx.execute(
                "INSERT INTO chunks(source_id, ord, text, locator, text_hash, created_at) "
                "SELECT ?, t.ord - 1, t.text, t.locator, t.hash, ? FROM unnest(?::text[], "
                "?::text[], ?::text[]) WITH ORDINALITY AS t(text, locator, hash, ord) "
                "RETURNING ord, id",
                (sid, now, texts, locators, hashes)).fetchall()
            ids = [cid for _, cid in sorted(rows)]
            if target is not None:
                _store_vectors(tx, target, ids, hashes, fresh)
            return sid

        sid = self.sql.write(_put)
        self.scope.committed([draft.uri])
        return sid

    def machines(self) -> dict[str, str]:
        """``machine id -> host name`` of the machines that indexed files into this memory."""
        return machine_names(self.sql)

    # -- reading -----------------------------------------------------------------------

    def document_text(self, source_id: int) -> str | None:
        row = self.sql.query_one("SELECT text FROM documents WHERE source_id = ?", (source_id,))
        return row[0] if row else None

    def extractor_of(self, source_id: int) -> str | None:
        row = self.sql.query_one("SELECT extractor FROM documents WHERE source_id = ?", (source_id,))
        return row[0] if row else None

    def source_id_by_uri(self, uri: str) -> int | None:
        row = self.sql.query_one("SELECT id FROM sources WHERE uri = ? AND machine = ?",
                                 (uri, self.scope.key(uri)))
        return row[0] if row else None

    def chunk(self, chunk_id: int) -> tuple[int, int, int, str, dict[str, Any]] | None:
        """``(chunk id, source id, ord, text, locator)`` of one chunk, or None."""
        row = self.sql.query_one(
            "SELECT id, source_id, ord, text, locator FROM chunks WHERE id = ?", (int(chunk_id),))
        return (row[0], row[1], row[2], row[3], json.loads(row[4] or "{}")) if row else None

    def recent_sources(self, privacy: Sequence[str], kinds: Sequence[str] | None = None,
                       limit: int = 10, preview_chars: int = 200) -> list[tuple]:
        """Indexed sources, most recently updated first: ``(id, uri, kind, title, privacy,
        updated_at, the first preview_chars of their text)``. ``kinds`` None means any."""
        where = "s.privacy = ANY(?) AND s.status = 'indexed'"
        params: list[Any] = [list(privacy)]
        if kinds is not None:
            where += " AND s.kind = ANY(?)"
            params.append(list(kinds))
        return self.sql.query(
            "SELECT s.id, s.uri, s.kind, s.title, s.privacy, s.updated_at, "
            "substr(d.text, 1, ?) FROM sources s LEFT JOIN documents d ON d.source_id = s.id "
            f"WHERE {where} ORDER BY s.updated_at DESC, s.id DESC LIMIT ?",
            (int(preview_chars), *params, int(limit)))

    def get_source(self, source_id: int) -> Source | None:
        row = self.sql.query_one(
            f"SELECT {_SOURCE_COLS}, (SELECT count(*) FROM chunks c WHERE c.source_id = s.id) "
            "FROM sources s WHERE s.id = ?", (source_id,))
        return Source.from_row(row, row[Source.NCOLS]) if row else None

    def chunks_of(self, source_id: int) -> list[tuple[int, dict[str, Any], str]]:
        return [(r[0], json.loads(r[1] or "{}"), r[2]) for r in self.sql.query(
            "SELECT id, locator, text FROM chunks WHERE source_id = ? ORDER BY id", (source_id,))]

    def derived_from(self, source_id: int) -> list[tuple[int, str, str]]:
        return [(r[0], r[1], r[2]) for r in self.sql.query(
            "SELECT id, kind, coalesce(title, uri) FROM sources WHERE parent_id = ? ORDER BY id",
            (source_id,))]

    def list_sources(self, *, kind: str | None = None, status: str | None = None,
                     limit: int | None = None) -> list[Source]:
        where, args = [], []
        if kind:
            where.append("s.kind = ?")
            args.append(kind)
        if status:
            where.append("s.status = ?")
            args.append(status)
        sql = (f"SELECT {_SOURCE_COLS}, (SELECT count(*) FROM chunks c WHERE c.source_id = s.id) "
               "FROM sources s")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY s.updated_at DESC, s.id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [Source.from_row(r, r[Source.NCOLS]) for r in self.sql.query(sql, args)]

    def sources_of_chunks(self, chunk_ids: Iterable[int]) -> set[int]:
        ids = sorted({int(c) for c in chunk_ids})
        if not ids:
            return set()
        return {r[0] for r in self.sql.query(
            "SELECT DISTINCT source_id FROM chunks WHERE id = ANY(?)", (ids,))}

    def resolve(self, ref: str | int) -> list[int]:
        """Source ids for a reference: an id, a uri, a file path, or a folder (everything under
        it). A path or folder means this machine's files; an id means the same everywhere."""

        def _resolve(tx: PgTx) -> list[int]:
            for kind, value in resolve_candidates(ref):
                if kind == "prefix":
                    found: set[int] = set()
                    for prefix in value:
                        found.update(r[0] for r in tx.execute(
                            f"SELECT id FROM sources WHERE machine = ? AND {UNDER}",
                            (self.scope.id, *_prefix_range(prefix))).fetchall())
                    if found:
                        return sorted(found)
                elif kind == "id":
                    row = tx.execute("SELECT id FROM sources WHERE id = ?", (value,)).fetchone()
                    if row:
                        return [row[0]]
                else:
                    row = tx.execute("SELECT id FROM sources WHERE uri = ? AND machine = ?",
                                     (value, self.scope.key(str(value)))).fetchone()
                    if row:
                        return [row[0]]
            return []

        return self.sql.read(_resolve)

    # -- forgetting --------------------------------------------------------------------

    def forget(self, ref: str | int, *, remove_files: Callable[[Source], list[str]] | None = None) -> ForgetReceipt:
        ids = self.resolve(ref)
        if not ids:
            raise UserInputError(f"nothing in memory matches '{ref}' (try 'deskmind sources')")
        return self.forget_ids(ids, remove_files=remove_files)

    def forget_ids(self, ids: Sequence[int], *, remove_files: Callable[[Source], list[str]] | None = None) -> ForgetReceipt:
        roots = [int(i) for i in ids]

        def _forget(tx: PgTx) -> ForgetReceipt:
            receipt = ForgetReceipt()
            tree = tx.execute(
                # Children by parent_id and sources made from several, to any depth (the
                # depth bound stops a cycle of derivations from running forever).
                "WITH RECURSIVE t(id, depth) AS (SELECT unnest(?::bigint[]), 0 "
                "UNION SELECT e.child, t.depth + 1 FROM t CROSS JOIN LATERAL ("
                "SELECT s.id AS child FROM sources s WHERE s.parent_id = t.id UNION ALL "
                "SELECT d.source_id FROM source_derivations d WHERE d.parent_id = t.id) e "
                "WHERE t.depth < 64) "
                "SELECT t.id, min(t.depth) FROM t JOIN sources s ON s.id = t.id GROUP BY t.id",
                (roots,)).fetchall()
            depth = dict(tree)
            all_ids = sorted(depth)
            receipt.derived_sources = sum(1 for d in depth.values() if d > 0)
            # Lock them: a put_source deriving from one of them waits, then finds it gone.
            for row in tx.execute(
                    f"SELECT {_SOURCE_COLS} FROM sources s WHERE s.id = ANY(?) ORDER BY s.id "
                    "FOR UPDATE", (all_ids,)).fetchall():
                src = Source.from_row(row)
                receipt.sources.append({"id": src.id, "uri": src.uri, "kind": src.kind,
                                        "title": src.title, "derived": depth[src.id] > 0})
                if remove_files:
                    receipt.files_removed.extend(remove_files(src))
            count = lambda sql, *a: tx.execute(sql, a).fetchone()[0]  # noqa: E731
            receipt.documents = count("SELECT count(*) FROM documents WHERE source_id = ANY(?)", all_ids)
            receipt.chunks = count("SELECT count(*) FROM chunks WHERE source_id = ANY(?)", all_ids)
            # The full-text index lives in the chunks' own tsv column: one entry per chunk.
            receipt.fts_rows = receipt.chunks
            receipt.links = count("SELECT count(*) FROM source_links WHERE source_id = ANY(?)", all_ids)
            receipt.links += count(
                "SELECT count(*) FROM source_derivations WHERE source_id = ANY(?) "
                "OR parent_id = ANY(?)", all_ids, all_ids)
            for idx in [vectors.active_index(tx)] + vectors.building_indexes(tx):
                if idx is not None:
                    receipt.vectors += count(
                        f"SELECT count(*) FROM {idx.float_table} v JOIN chunks c ON c.id = v.chunk_id "
                        "WHERE c.source_id = ANY(?)", all_ids)
            # Documents, chunks (their tsvector with them), vectors, links and derived sources
            # go through ON DELETE CASCADE.
            tx.execute("DELETE FROM sources WHERE id = ANY(?)", (all_ids,))
            return receipt

        return self.sql.write(_forget)

    # -- maintenance -------------------------------------------------------------------

    def is_empty(self) -> bool:
        return self.sql.query_one("SELECT 1 FROM chunks LIMIT 1") is None

    def stats(self) -> dict[str, Any]:
        return maintenance.stats(self)

    def self_check(self) -> str:
        """What the server offers, checked now (see :func:`maintenance.self_check`)."""
        return maintenance.self_check(self)

    def backup(self, dest: Path) -> Path:
        """A dump of the whole database by ``pg_dump`` in its custom format (restore it with
        ``pg_restore``); see :mod:`deskmind.core.memory.pg.backup`."""
        from deskmind.core.memory.pg.backup import pg_dump

        major = int(self.sql.query_one("SHOW server_version_num")[0]) // 10000
        return pg_dump(self._conninfo, self._password, dest, server_major=major)

    def warm_vectors(self) -> None:
        """Nothing to load: the vectors stay in the server, which caches its own pages (the
        SQLite backend loads an in-process copy here)."""

    def integrity_check(self) -> list[str]:
        """What is wrong with the memory's own rows and indexes; [] when healthy."""
        return maintenance.integrity_check(self)

    def optimize(self, *, reindex: bool = False) -> dict[str, Any]:
        """VACUUM ANALYZE, and with ``reindex`` rebuild the HNSW indexes (see maintenance)."""
        return maintenance.optimize(self, reindex=reindex)


def _lock_or_insert(tx: PgTx, draft: SourceDraft, machine: str, meta: str,
                    now: float) -> tuple[int, bool]:
    """The id of the source at ``draft.uri`` (on ``machine``: '' for shared sources), locked for
    this transaction, and whether it was already there; inserted when it was not. Two
    processes storing one uri at once: the second waits for the first, then updates what the
    first stored."""
    while True:
        row = tx.execute("SELECT id FROM sources WHERE uri = ? AND machine = ? FOR UPDATE",
                         (draft.uri, machine)).fetchone()
        if row is not None:
            return row[0], True
        row = tx.execute(
            "INSERT INTO sources(uri, kind, title, content_hash, size, mtime, privacy, status, "
            "error, collection, parent_id, metadata, created_at, updated_at, indexed_at, machine) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'indexed', NULL, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (uri, machine) DO NOTHING RETURNING id",
            (draft.uri, draft.kind, _no_nul(draft.title), draft.content_hash, draft.size,
             draft.mtime, draft.privacy, draft.collection, draft.parent_id, meta, now, now, now,
             machine),
        ).fetchone()
        if row is not None:
            return row[0], False


def _store_vectors(tx: PgTx, idx: VectorIndex, ids: list[int], hashes: list[str],
                   fresh: dict[str, np.ndarray]) -> None:
    have = [(cid, fresh[h]) for cid, h in zip(ids, hashes) if h in fresh]
    if have:
        vectors.insert_vectors(tx, idx, [c for c, _ in have], np.stack([v for _, v in have]))
    missing = [(cid, h) for cid, h in zip(ids, hashes) if h not in fresh]
    if missing:
        # Same text elsewhere in memory: copy its vector instead of embedding again.
        pairs = tx.execute(
            f"SELECT m.cid, (SELECT c.id FROM chunks c JOIN {idx.float_table} v "
            "ON v.chunk_id = c.id WHERE c.text_hash = m.h AND c.id <> m.cid LIMIT 1) "
            "FROM unnest(?::bigint[], ?::text[]) AS m(cid, h)",
            ([c for c, _ in missing], [h for _, h in missing])).fetchall()
        copied = vectors.copy_vectors(tx, idx, [(n, o) for n, o in pairs if o is not None])
        if copied < len(missing):
            log.debug("%d chunks stored without a vector (to be embedded)", len(missing) - copied)


def _fill_staged_vectors(tx: PgTx, idx: VectorIndex, stage: int) -> None:
    """Staged chunks without a vector take that of the same text: in memory already (this
    source's old chunks included) or staged earlier in this stage."""
    tx.execute(
        f"UPDATE staged_chunks t SET embedding = (SELECT v.embedding FROM chunks c "
        f"JOIN {idx.float_table} v ON v.chunk_id = c.id WHERE c.text_hash = t.text_hash LIMIT 1) "
        "WHERE t.stage_id = ? AND t.embedding IS NULL", (stage,))
    tx.execute(
        "UPDATE staged_chunks t SET embedding = (SELECT s.embedding FROM staged_chunks s "
        "WHERE s.stage_id = t.stage_id AND s.text_hash = t.text_hash AND s.embedding IS NOT NULL "
        "LIMIT 1) WHERE t.stage_id = ? AND t.embedding IS NULL", (stage,))


def _publish_staged(tx: PgTx, idx: VectorIndex | None, sid: int, stage: int, now: float) -> None:
    """Move a stage's chunks and vectors to source ``sid`` (whose old chunks are gone)."""
    tx.execute(
        "INSERT INTO chunks(source_id, ord, text, locator, text_hash, created_at) "
        "SELECT ?, ord, text, locator, text_hash, ? FROM staged_chunks WHERE stage_id = ? ORDER BY ord",
        (sid, now, stage))
    if idx is not None:
        tx.execute(
            f"INSERT INTO {idx.float_table}(chunk_id, embedding) SELECT c.id, s.embedding "
            "FROM staged_chunks s JOIN chunks c ON c.source_id = ? AND c.ord = s.ord "
            "WHERE s.stage_id = ? AND s.embedding IS NOT NULL", (sid, stage))
    staging.drop_stage(tx, stage)


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _no_nul(text: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; SQLite can. A NUL in extracted text is noise.
    return text.replace("\x00", "\ufffd") if text and "\x00" in text else text


def _connect_error(url: str, exc: BaseException) -> str:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    low = reason.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return (f"the PostgreSQL server at {url} refused the credentials ({reason}): set the "
                "password with 'deskmind store password' or check the user name")
    if "does not exist" in low and "database" in low:
        return (f"the PostgreSQL server at {url} has no such database ({reason}): create it "
                "(createdb) or fix the URL")
    return (f"the memory database {url} could not be reached ({reason}): check that the server "
            "is running and reachable; Deskmind does not fall back to a local file, which would "
            "split the memory")
