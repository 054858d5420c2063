"""Opening the memory database: a SQLite that loads sqlite-vec, in WAL mode.

The standard library's ``sqlite3`` cannot load extensions on many Pythons (pyenv builds,
python.org builds on macOS), so Deskmind uses ``sqlean.py``: the same DB-API, with its own
SQLite that has FTS5 and extension loading on Linux, macOS and Windows.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from pathlib import Path
from typing import Any

import sqlean

from deskmind.core.errors import StorageError

log = logging.getLogger(__name__)

# Exported so that other modules catch the right exception classes.
sqlite = sqlean
DatabaseError = sqlean.DatabaseError
OperationalError = sqlean.OperationalError
IntegrityError = sqlean.IntegrityError

BUSY_TIMEOUT_MS = 10_000
# No memory-mapped I/O. Each connection maps the file on its own and every page it has touched
# stays in the process's resident set, once per connection: with the app's reader threads a
# 42 MB database at 10k chunks held 50-80 MB of RSS after 20 questions, growing with each one
# and bounded only by the file's size times the connections. Read through SQLite's page cache
# instead, bounded per connection, with the OS's file cache (not charged to the app) below it;
# hybrid search at 10k chunks was as fast either way here (within the noise of a shared machine).
MMAP_BYTES = 0
# Page cache per connection, in KiB: readers (one per thread) read mostly small, scattered
# pages; the single writer keeps more, for ingest's large transactions.
READER_CACHE_KIB = 8_000
WRITER_CACHE_KIB = 32_000


def _load_vec(conn: Any) -> None:
    try:
        import sqlite_vec
    except ImportError as exc:  # pragma: no cover - a broken install
        raise StorageError(
            "sqlite-vec is not installed: reinstall Deskmind (pip install deskmind) to get it"
        ) from exc
    if not hasattr(conn, "enable_load_extension"):
        raise StorageError(
            "sqlite-vec could not be loaded: this SQLite binding cannot load extensions"
        )
    try:
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
    except Exception as exc:
        raise StorageError(f"sqlite-vec could not be loaded: {exc}") from exc
    finally:
        conn.enable_load_extension(False)


# Below this much free space, an I/O error from SQLite is taken to mean a full disk
# (SQLite reports "disk I/O error", not "full", when it cannot grow its -shm file).
LOW_SPACE_BYTES = 1 << 20


def folder_problem(path: Path) -> str | None:
    """Why the folder holding ``path`` cannot take writes (read-only, full, permissions), or None."""
    folder = Path(path)
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    if hasattr(os, "statvfs"):
        try:
            st = os.statvfs(folder)
        except OSError:
            return None
        if st.f_flag & os.ST_RDONLY:
            return (f"{folder} is on a read-only filesystem: make it writable or choose another "
                    "data folder (DESKMIND_HOME)")
        if st.f_bavail * st.f_frsize < LOW_SPACE_BYTES:
            return f"the disk holding {folder} is full: free some space and try again"
    if not os.access(folder, os.W_OK):
        return f"{folder} is not writable: check its permissions or choose another data folder"
    return None


def describe_os_error(exc: BaseException, path: Path) -> str:
    """One line that says what is wrong with a path, for the errors people see."""
    code = getattr(exc, "errno", None)
    low = str(exc).lower()
    if code == errno.ENOSPC or "full" in low:
        return f"the disk holding {path} is full: free some space and try again"
    denied = code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in low \
        or "read-only" in low
    if denied or "unable to open" in low or "i/o error" in low:
        why = folder_problem(Path(path))
        if why:
            return why
        if denied:
            return f"{path} is not writable: check its permissions or choose another data folder"
    return f"{path}: {exc}"


def connect(path: Path | str, *, readonly: bool = False, cache_kib: int = READER_CACHE_KIB) -> Any:
    """Open one connection with sqlite-vec loaded and Deskmind's pragmas set; ``cache_kib``
    bounds its page cache.

    ``path`` may be ``":memory:"`` for throwaway databases. The returned connection is in
    autocommit mode (``isolation_level=None``); callers open transactions explicitly.
    """
    target = str(path)
    if target != ":memory:":
        p = Path(target)
        if not readonly:
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(describe_os_error(exc, p.parent)) from exc
        if p.exists() and p.is_dir():
            raise StorageError(f"{p} is a folder, not a memory database")
        if readonly:
            target = f"file:{p}?mode=ro"
    try:
        conn = sqlean.connect(
            target,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
            uri=readonly,
        )
    except sqlean.OperationalError as exc:
        why = folder_problem(Path(target)) if target != ":memory:" else None
        raise StorageError(why or f"cannot open the memory database {path}: {exc}") from exc
    try:
        _load_vec(conn)
        _apply_pragmas(conn, path, readonly, cache_kib)
    except Exception:
        conn.close()
        raise
    return conn


def _set_wal(conn: Any) -> str:
    """Switch to WAL, waiting out other openers of a new database.

    Changing the journal mode needs an exclusive lock, and SQLite reports "database is locked"
    at once (without the busy handler) while another connection holds a shared lock, as when
    the tray app and a command open a fresh database at the same moment."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlean.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _apply_pragmas(conn: Any, path: Path | str, readonly: bool, cache_kib: int = READER_CACHE_KIB) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        # Reading the header fails here on a file that is not a database.
        conn.execute("PRAGMA schema_version").fetchone()
        if not readonly and str(path) != ":memory:":
            mode = _set_wal(conn)
            if mode.lower() != "wal":
                log.warning("journal_mode is %s, not WAL, for %s", mode, path)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    except sqlean.DatabaseError as exc:
        msg = str(exc)
        if "not a database" in msg or "malformed" in msg or "encrypted" in msg:
            raise StorageError(
                f"{path} is not a Deskmind memory database (or it is damaged): {msg}. "
                "Move it aside or set DESKMIND_HOME to another folder; "
                "'deskmind doctor' checks a database"
            ) from exc
        if "readonly" in msg or "read-only" in msg or "unable to open" in msg or "I/O error" in msg:
            raise StorageError(describe_os_error(exc, Path(str(path)))) from exc
        raise StorageError(f"cannot use the memory database {path}: {msg}") from exc


def file_is_sqlite(path: Path) -> bool:
    """True when ``path`` starts with the SQLite header (or is empty/absent: a new DB)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        return True
    except IsADirectoryError as exc:
        raise StorageError(f"{path} is a folder, not a memory database") from exc
    except OSError as exc:
        raise StorageError(f"cannot read the memory database: {describe_os_error(exc, path)}") from exc
    return head == b"" or head == b"SQLite format 3\x00"


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
