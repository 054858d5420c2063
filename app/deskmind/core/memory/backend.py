"""Opening the memory: the backend is chosen by where it lives.

A path or ``sqlite:///path`` opens the SQLite store; ``postgresql://…`` (or ``postgres://…``)
opens the PostgreSQL store, imported only then (so psycopg is loaded only by those who use it).
The location comes from ``DESKMIND_DB``, else ``[storage] url`` in settings, else the SQLite
file in the data folder: :func:`memory_location`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from deskmind.core.errors import DeskmindError, StorageError
from deskmind.core.memory.api import Memory
from deskmind.core.memory.machine import Machine
from deskmind.core.memory.urls import StorageLocation, parse_location, redact_url

log = logging.getLogger(__name__)

ENV_VAR = "DESKMIND_DB"
PG_MODULE = "deskmind.core.memory.pg.store"


def memory_location(default_path: Path, settings: Any = None,
                    environ: Mapping[str, str] | None = None) -> str | Path:
    """Where this process keeps its memory: ``DESKMIND_DB``, else ``[storage] url``, else
    ``default_path``."""
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR, "").strip():
        return env[ENV_VAR].strip()
    storage = getattr(settings, "storage", None)
    url = getattr(storage, "url", None)
    if url:
        return url
    return default_path


def open_memory(url_or_path: str | Path, *, secrets: Any = None,
                machine: "Machine | Path | None" = None) -> Memory:
    """The memory at ``url_or_path``. ``secrets`` (a :class:`~deskmind.core.secrets.SecretStore`,
    made when needed) supplies a PostgreSQL password from the OS keyring. ``machine``: this
    installation, which file sources are stored under (default: the data folder's id)."""
    loc = parse_location(url_or_path)
    if loc.backend == "sqlite":
        from deskmind.core.memory.store import MemoryStore

        return MemoryStore(loc.path, machine=machine)
    return _open_postgres(loc, secrets, machine)


def _open_postgres(loc: StorageLocation, secrets: Any, machine: "Machine | Path | None" = None) -> Memory:
    import importlib

    try:
        module = importlib.import_module(PG_MODULE)
    except ImportError as exc:
        raise StorageError(
            f"the memory is set to PostgreSQL ({redact_url(loc.url)}) but this Deskmind has no "
            f"PostgreSQL backend ({exc}): install Deskmind with its PostgreSQL support "
            "(psycopg, psycopg-pool, pgvector), or point DESKMIND_DB / [storage] url at a "
            "SQLite file") from None
    password = database_password(loc, secrets)
    return module.PgMemoryStore(loc.url, password=password, machine=machine)


def database_password(loc: StorageLocation, secrets: Any = None) -> str | None:
    """The password stored for this database, or None (the server may not ask for one)."""
    if secrets is None:
        from deskmind.core.secrets import SecretStore

        try:
            secrets = SecretStore()
        except ImportError:  # no keyring module at all: the server may still let us in
            return None
    try:
        return secrets.database_password(loc.keyring_key)
    except DeskmindError as exc:
        log.warning("no password for %s from the keyring: %s", redact_url(loc.url), exc)
        return None
