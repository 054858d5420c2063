"""Backups of a PostgreSQL memory with ``pg_dump`` (custom format, restored by ``pg_restore``).

``pg_dump`` must be at least the server's major version (an older one refuses a newer
server), so the one used is chosen among ``$DESKMIND_PG_BIN``, the ``PATH`` and Debian's
side-by-side installs (``/usr/lib/postgresql/<major>/bin``), preferring the server's own major.
The password goes to it through ``PGPASSWORD`` in its environment, never on its command line
(which every user of the machine can read), and ``--no-password`` keeps it from prompting.
When no suitable ``pg_dump`` is found the error says exactly what to install.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from deskmind.core.errors import StorageError
from deskmind.core.memory.maintenance import backup_file
from deskmind.core.memory.urls import redact_url

log = logging.getLogger(__name__)

BIN_ENV = "DESKMIND_PG_BIN"
DEBIAN_BINS = "/usr/lib/postgresql/*/bin"
SUFFIX = ".dump"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
TIMEOUT_S = 6 * 3600


@dataclass(frozen=True)
class Tool:
    path: str
    major: int


def tool_major(path: str, run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> int | None:
    """The major version of a PostgreSQL client program (``pg_dump --version``), or None."""
    try:
        out = run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION.search(out.stdout or "")
    return int(m.group(1)) if m else None


def candidates(name: str, environ: Mapping[str, str] | None = None,
               debian_bins: str = DEBIAN_BINS) -> list[str]:
    """Where a PostgreSQL client program may be, most specific first, without duplicates."""
    env = os.environ if environ is None else environ
    found: list[str] = []
    if env.get(BIN_ENV):
        found.append(str(Path(env[BIN_ENV]).expanduser() / name))
    on_path = shutil.which(name, path=env.get("PATH"))
    if on_path:
        found.append(on_path)
    found.extend(sorted(glob.glob(f"{debian_bins}/{name}"), reverse=True))
    out: list[str] = []
    for p in found:
        real = os.path.realpath(p)
        if os.access(p, os.X_OK) and real not in {os.path.realpath(q) for q in out}:
            out.append(p)
    return out


def find_tool(name: str, server_major: int, environ: Mapping[str, str] | None = None,
              run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
              debian_bins: str = DEBIAN_BINS) -> Tool:
    """The ``name`` program to use against a server of ``server_major``: its own major if
    installed, else the newest that is newer. Raises StorageError saying what to install."""
    seen: list[Tool] = []
    for path in candidates(name, environ, debian_bins):
        major = tool_major(path, run)
        if major is not None:
            seen.append(Tool(path, major))
    fit = [t for t in seen if t.major >= server_major]
    if fit:
        same = [t for t in fit if t.major == server_major]
        return same[0] if same else max(fit, key=lambda t: t.major)
    install = (f"install the PostgreSQL {server_major} client tools (Debian/Ubuntu: "
               f"'apt install postgresql-client-{server_major}', from apt.postgresql.org when "
               f"your release lacks it; macOS: 'brew install postgresql@{server_major}'), or set "
               f"{BIN_ENV} to the folder that holds {name} {server_major} or newer")
    if not seen:
        raise StorageError(f"{name} was not found (looked in {BIN_ENV}, PATH and {DEBIAN_BINS}), "
                           f"and the server is PostgreSQL {server_major}: {install}")
    have = ", ".join(f"{t.path} is {t.major}" for t in seen)
    raise StorageError(f"{name} is older than the server, which is PostgreSQL {server_major} "
                       f"({have}), and an older {name} cannot read a newer server: {install}")


def pg_dump(conninfo: str, password: str | None, dest: Path, *, server_major: int,
            environ: Mapping[str, str] | None = None,
            run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
            debian_bins: str = DEBIAN_BINS) -> Path:
    """Dump the database at ``conninfo`` (a URL without a password) to ``dest`` in pg_dump's
    custom format; returns the file written. Nothing is left behind when it fails."""
    env = dict(os.environ if environ is None else environ)
    tool = find_tool("pg_dump", server_major, env, run, debian_bins)
    dest = backup_file(dest, SUFFIX)
    tmp = dest.with_name(dest.name + ".partial")
    env.pop("PGPASSWORD", None)
    if password is not None:
        env["PGPASSWORD"] = password
    args: Sequence[str] = [tool.path, "--format=custom", "--no-password", f"--file={tmp}",
                           f"--dbname={conninfo}"]
    log.info("backing up %s with %s (version %d)", redact_url(conninfo), tool.path, tool.major)
    try:
        proc = run(list(args), capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        _remove(tmp)
        raise StorageError(f"{tool.path} could not be run ({exc}): nothing was written") from exc
    if proc.returncode != 0:
        _remove(tmp)
        raise StorageError(f"pg_dump could not back up {redact_url(conninfo)}: "
                           f"{_reason(proc.stderr, password)}; nothing was written")
    try:
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except OSError as exc:
        _remove(tmp)
        raise StorageError(f"the backup could not be written to {dest} ({exc})") from exc
    return dest


def restore_command(dest: Path, url: str) -> str:
    """The command that restores ``dest`` into a new, empty database (shown after a backup)."""
    return f"pg_restore --no-owner --dbname '{redact_url(url)}' '{dest}'"


def _reason(stderr: str, password: str | None) -> str:
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    text = (lines[0] if lines else "it failed without saying why")
    text = text.removeprefix("pg_dump: error: ")
    if password:
        text = text.replace(password, "***")
    return text


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
