"""Looking after the memory database: what it holds, whether it is sound, consistent copies.

Functions of a :class:`~deskmind.core.memory.store.MemoryStore` (which offers each as a method);
they read through the calling thread's connection and may run on any thread but the GUI's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deskmind.core.errors import StorageError, UserInputError
from deskmind.core.memory import db, vectors
from deskmind.core.memory.writer import translate_db_error

if TYPE_CHECKING:
    from deskmind.core.memory.store import MemoryStore


def stats(store: "MemoryStore") -> dict[str, Any]:
    """Counts of sources (by kind and status), chunks and vectors, the file's size, migrations."""
    conn = store.reader()
    by_kind = {k: n for k, n in conn.execute(
        "SELECT kind, count(*) FROM sources GROUP BY kind ORDER BY kind")}
    by_status = {k: n for k, n in conn.execute(
        "SELECT status, count(*) FROM sources GROUP BY status ORDER BY status")}
    chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    idx = vectors.active_index(conn)
    out: dict[str, Any] = {
        "backend": "sqlite",
        "db_path": str(store.path),
        "db_bytes": _db_bytes(store.path),
        "sources": sum(by_kind.values()),
        "sources_by_kind": by_kind,
        "sources_by_status": by_status,
        "chunks": chunks,
        "vector_index": None,
        "building_indexes": [
            {"id": b.id, "model_id": b.model_id, "dim": b.dim}
            for b in vectors.building_indexes(conn)
        ],
        "migrations": [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY rowid")],
    }
    if idx is not None:
        out["vector_index"] = {
            "id": idx.id, "model_id": idx.model_id, "dim": idx.dim,
            "vectors": vectors.count_vectors(conn, idx),
        }
    return out


def integrity_check(store: "MemoryStore") -> list[str]:
    """``PRAGMA integrity_check`` plus an FTS5 consistency check; [] when healthy."""
    conn = store.reader()
    try:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()
                    if r[0] != "ok"]
    except db.DatabaseError as exc:  # damage bad enough that the check itself stops
        problems = [f"database: {exc}"]
    try:
        conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
    except db.DatabaseError as exc:
        problems.append(f"full-text index: {exc}")
    return problems


def optimize(store: "MemoryStore", *, reindex: bool = False) -> dict[str, Any]:
    """Merge the full-text index's segments, refresh the planner's statistics and ``VACUUM``
    the file (space of deleted rows given back); with ``reindex``, rebuild every index and the
    full-text index first. Runs on the writer thread: other writes wait, reads go on."""
    started = time.perf_counter()
    before = _db_bytes(store.path)
    done: dict[str, Any] = {"backend": "sqlite", "vacuumed": [], "reindexed": [], "dropped": [],
                            "failed": []}

    def _optimize(conn: Any) -> None:
        if reindex:
            conn.execute("REINDEX")
            conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
            done["reindexed"] = ["all indexes", "chunks_fts"]
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        conn.execute("PRAGMA optimize")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    store.writer.call(_optimize)
    done["vacuumed"] = [str(store.path)]
    done["bytes_before"] = before
    done["bytes_after"] = _db_bytes(store.path)
    done["seconds"] = round(time.perf_counter() - started, 3)
    return done


def backup_file(dest: Path, suffix: str) -> Path:
    """Where a backup asked for at ``dest`` goes, on either backend: a new file (a folder gets
    a dated name ending in ``suffix``)."""
    dest = Path(dest).expanduser().absolute()
    if dest.is_dir():
        dest = dest / f"deskmind-{time.strftime('%Y%m%d-%H%M%S')}{suffix}"
    if dest.exists():
        raise UserInputError(f"{dest} already exists: choose a new file name")
    if not dest.parent.is_dir():
        raise UserInputError(f"{dest.parent} is not a folder: create it first or check the path")
    return dest


def backup(store: "MemoryStore", dest: Path) -> Path:
    """A consistent copy made with SQLite's backup API, safe while others read and write."""
    dest = backup_file(dest, ".db")
    tmp = dest.with_name(dest.name + ".partial")
    try:
        target = db.connect(tmp)
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError(db.describe_os_error(exc, dest.parent)) from exc
    try:
        src = db.connect(store.path)
        try:
            # One step: a single read snapshot (WAL lets writers go on meanwhile), where
            # stepping page by page restarts whenever another connection commits.
            src.backup(target, pages=-1)
        finally:
            src.close()
        target.execute("PRAGMA journal_mode = DELETE")
        target.close()
        os.replace(tmp, dest)
        db.fsync_dir(dest.parent)
    except (db.DatabaseError, OSError) as exc:
        try:
            target.close()
        except db.DatabaseError:
            pass
        for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            p.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageError(db.describe_os_error(exc, dest)) from exc
        raise translate_db_error(exc, dest) from exc
    return dest


def _db_bytes(path: Path | str) -> int:
    if str(path) == ":memory:":
        return 0
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += os.stat(str(path) + suffix).st_size
        except OSError:
            pass
    return total


def self_check() -> str:
    """FTS5 and sqlite-vec working in this process's SQLite, tried on a scratch database."""
    conn = db.connect(":memory:")
    try:
        vec, lite = conn.execute("SELECT vec_version(), sqlite_version()").fetchone()
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    except db.DatabaseError as exc:
        raise StorageError(f"SQLite here cannot do what Deskmind needs: {exc}") from exc
    finally:
        conn.close()
    return f"SQLite {lite} with FTS5, sqlite-vec {vec}"
