"""Looking after a PostgreSQL memory: what it holds, whether it is sound, keeping it quick.

The counterpart of :mod:`deskmind.core.memory.maintenance` (SQLite). The server looks after
its own pages; what is checked here is what Deskmind relies on: pgvector enabled, no rows left
without their owner (possible after a restore with triggers disabled), every chunk with its
tsvector, every index valid. Functions of a
:class:`~deskmind.core.memory.pg.store.PgMemoryStore`, which offers each as a method; they
block on the network: call them from any thread but the GUI's.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import psycopg

from deskmind.core.errors import StorageError
from deskmind.core.memory.pg import migrations, vectors
from deskmind.core.memory.pg.runner import PgTx

if TYPE_CHECKING:
    from deskmind.core.memory.pg.store import PgMemoryStore

log = logging.getLogger(__name__)

# Rows that must have an owner: (what, the owning table, the query counting those without one).
_ORPHANS = (
    ("documents", "SELECT count(*) FROM documents d WHERE NOT EXISTS "
                  "(SELECT 1 FROM sources s WHERE s.id = d.source_id)"),
    ("chunks", "SELECT count(*) FROM chunks c WHERE NOT EXISTS "
               "(SELECT 1 FROM sources s WHERE s.id = c.source_id)"),
    ("derived sources", "SELECT count(*) FROM sources c WHERE c.parent_id IS NOT NULL AND "
                        "NOT EXISTS (SELECT 1 FROM sources s WHERE s.id = c.parent_id)"),
    ("derivations", "SELECT count(*) FROM source_derivations d WHERE NOT EXISTS "
                    "(SELECT 1 FROM sources s WHERE s.id = d.source_id) OR NOT EXISTS "
                    "(SELECT 1 FROM sources s WHERE s.id = d.parent_id)"),
    ("links", "SELECT count(*) FROM source_links l WHERE NOT EXISTS "
              "(SELECT 1 FROM sources s WHERE s.id = l.source_id)"),
)
# The tables of this memory (the schema it lives in), their sizes with indexes and TOAST.
_TABLE_SIZES = (
    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY c.relname")
_INVALID_INDEXES = (
    "SELECT ic.relname, tc.relname FROM pg_index i "
    "JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid "
    "JOIN pg_namespace n ON n.oid = tc.relnamespace "
    "WHERE n.nspname = current_schema() AND NOT i.indisvalid ORDER BY ic.relname")


def _indexes(tx: PgTx) -> list[vectors.VectorIndex]:
    return [i for i in [vectors.active_index(tx)] + vectors.building_indexes(tx) if i is not None]


def server_info(tx: PgTx) -> dict[str, Any]:
    """Where the memory is and what serves it; never a password."""
    info = tx.conn.info
    version = tx.execute("SHOW server_version").fetchone()[0]
    vec = tx.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return {
        # A Unix socket folder for a local server reached through one.
        "server": f"{info.host}:{info.port}",
        "database": info.dbname,
        "user": info.user,
        "server_version": version,
        "pgvector": vec[0] if vec else None,
    }


def stats(store: "PgMemoryStore") -> dict[str, Any]:
    """The keys of the SQLite store's ``stats`` (``db_path`` is the URL without a password,
    ``db_bytes`` the database's size on the server) plus where it lives, the server and
    pgvector versions, and the size of each table with its indexes."""

    def _stats(tx: PgTx) -> dict[str, Any]:
        by_kind = dict(tx.execute(
            "SELECT kind, count(*) FROM sources GROUP BY kind ORDER BY kind").fetchall())
        by_status = dict(tx.execute(
            "SELECT status, count(*) FROM sources GROUP BY status ORDER BY status").fetchall())
        idx = vectors.active_index(tx)
        tables = {name: int(size) for name, size in tx.execute(_TABLE_SIZES).fetchall()}
        out: dict[str, Any] = {
            "backend": "postgres",
            "db_path": store.url,
            "db_bytes": int(tx.execute("SELECT pg_database_size(current_database())").fetchone()[0]),
            "memory_bytes": sum(tables.values()),
            "table_bytes": tables,
            **server_info(tx),
            "sources": sum(by_kind.values()),
            "sources_by_kind": by_kind,
            "sources_by_status": by_status,
            "chunks": tx.execute("SELECT count(*) FROM chunks").fetchone()[0],
            "vector_index": None,
            "building_indexes": [{"id": b.id, "model_id": b.model_id, "dim": b.dim}
                                 for b in vectors.building_indexes(tx)],
            "migrations": migrations.applied(tx),
        }
        if idx is not None:
            out["vector_index"] = {"id": idx.id, "model_id": idx.model_id, "dim": idx.dim,
                                   "vectors": vectors.count_vectors(tx, idx)}
        return out

    return store.sql.read(_stats)


def self_check(store: "PgMemoryStore") -> str:
    """What the server offers, checked now: its version, pgvector, and full text and halfvec
    distance working. Raises StorageError when one does not."""

    def _check(tx: PgTx) -> str:
        info = server_info(tx)
        if info["pgvector"] is None:
            raise StorageError(f"pgvector is not enabled in {store.url}: run "
                               "'CREATE EXTENSION vector;' in it")
        tx.execute(f"SELECT to_tsvector('{migrations.TS_CONFIG}', 'checked') @@ "
                   "websearch_to_tsquery('checked'), '[1,0]'::halfvec(2) <=> '[0,1]'::halfvec(2)")
        return (f"PostgreSQL {info['server_version']} with pgvector {info['pgvector']} "
                f"(database {info['database']} at {info['server']})")

    try:
        return store.sql.read(_check)
    except psycopg.Error as exc:
        raise StorageError(f"the PostgreSQL server at {store.url} cannot do what Deskmind "
                           f"needs: {_first_line(exc)}") from exc


def integrity_check(store: "PgMemoryStore") -> list[str]:
    """What is wrong with the memory's own rows and indexes; [] when healthy."""

    def _check(tx: PgTx) -> list[str]:
        problems = []
        if tx.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
            problems.append("pgvector: the extension is no longer enabled in this database")
        for what, sql in _ORPHANS:
            n = tx.execute(sql).fetchone()[0]
            if n:
                problems.append(f"{n} {what} belong to a source that is gone "
                                "(restored with foreign keys off?)")
        n = tx.execute("SELECT count(*) FROM chunks WHERE tsv IS NULL").fetchone()[0]
        if n:
            problems.append(f"full-text index: {n} chunks have no tsvector")
        for idx in _indexes(tx):
            if tx.execute("SELECT to_regclass(?)", (idx.float_table,)).fetchone()[0] is None:
                problems.append(f"vector index {idx.id}: its table {idx.float_table} is missing")
                continue
            extra = tx.execute(
                f"SELECT count(*) FROM {idx.float_table} v WHERE NOT EXISTS "
                "(SELECT 1 FROM chunks c WHERE c.id = v.chunk_id)").fetchone()[0]
            if extra:
                problems.append(f"vector index {idx.id}: {extra} vectors belong to no chunk")
            wrong = tx.execute(
                f"SELECT count(*) FROM {idx.float_table} WHERE vector_dims(embedding) <> ?",
                (idx.dim,)).fetchone()[0]
            if wrong:
                problems.append(f"vector index {idx.id}: {wrong} vectors are not {idx.dim}-d")
        for index, table in tx.execute(_INVALID_INDEXES).fetchall():
            problems.append(f"index {index} on {table} is not valid (an interrupted build): "
                            "run 'deskmind store optimize --reindex'")
        return problems

    return store.sql.read(_check)


def optimize(store: "PgMemoryStore", *, reindex: bool = False) -> dict[str, Any]:
    """``VACUUM (ANALYZE)`` of every table of the memory (space of deleted rows reused, planner
    statistics fresh); with ``reindex``, also rebuild each vector index's HNSW graph and any
    index left invalid, with ``REINDEX CONCURRENTLY`` so searches and writes go on meanwhile.
    Returns what was done, with the memory's size before and after."""
    started = time.perf_counter()

    def _sizes(tx: PgTx) -> int:
        return sum(int(s) for _, s in tx.execute(_TABLE_SIZES).fetchall())

    before = store.sql.read(_sizes)
    done: dict[str, Any] = {"backend": "postgres", "vacuumed": [], "reindexed": [], "dropped": [],
                            "failed": []}

    def _vacuum(tx: PgTx) -> list[str]:
        names = [r[0] for r in tx.execute(_TABLE_SIZES).fetchall()]
        for name in names:
            try:
                tx.execute(f'VACUUM (ANALYZE) "{name}"')
            except psycopg.errors.UndefinedTable:
                continue  # dropped by a re-embed's swap meanwhile
        return names

    done["vacuumed"] = store.sql.outside_transaction(_vacuum)
    if reindex:
        def _reindex(tx: PgTx) -> None:
            targets = [f"{idx.float_table}_hnsw" for idx in _indexes(tx)]
            for index, _table in tx.execute(_INVALID_INDEXES).fetchall():
                if "_ccnew" in index or "_ccold" in index:
                    # What an interrupted REINDEX CONCURRENTLY leaves: a copy, not needed.
                    tx.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"')
                    done["dropped"].append(index)
                elif index not in targets:
                    targets.append(index)
            for index in targets:
                try:
                    tx.execute(f'REINDEX INDEX CONCURRENTLY "{index}"')
                except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject):
                    continue  # its index was swapped out by a re-embed meanwhile
                except psycopg.errors.DatabaseError as exc:
                    # The others are still worth rebuilding; the caller reports this one.
                    done["failed"].append(f"{index}: {_first_line(exc)}")
                    continue
                done["reindexed"].append(index)

        store.sql.outside_transaction(_reindex)
    done["bytes_before"] = before
    done["bytes_after"] = store.sql.read(_sizes)
    done["seconds"] = round(time.perf_counter() - started, 3)
    log.info("memory optimized: %s", done)
    return done


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
