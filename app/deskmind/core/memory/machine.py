"""Which installation of Deskmind this is, for file sources that mean something only here.

Several installations (a laptop, a desktop, a mini PC) may share one memory database. A note or a
meeting means the same everywhere, but a file path names a file only on the machine that indexed
it: each file source records the machine, and a path is unique per machine, so the same folder
indexed on two machines makes two sets of sources. An installation's id is a random one kept in
``<data folder>/machine-id`` (made on first use; copying the data folder to a new machine copies
it too, which is what a restored installation wants); the host name is kept beside it in the
database for display.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from deskmind.core.errors import StorageError
from deskmind.core.memory import uris

log = logging.getLogger(__name__)

FILE_NAME = "machine-id"
# Sources that are not files (notes, meetings, conversations, anything with a scheme) are
# shared by every machine: their machine is this empty key.
SHARED = ""
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")


@dataclass(frozen=True)
class Machine:
    id: str
    name: str  # the host name, for people; the id is what sources record


def is_machine_local(uri: str) -> bool:
    """True for a file path (it names a file only on the machine that indexed it), including
    a ``file://`` URI (how a path whose name is not UTF-8 is kept, see :mod:`uris`); False for
    a uri with another scheme (``deskmind://note/…``), which means the same on every machine."""
    return "://" not in uri or uri.startswith(uris.FILE_SCHEME)


def load_machine(data_dir: Path, *, name: str | None = None) -> Machine:
    """This installation's machine, its id read from ``data_dir/machine-id`` (created with a new
    random id when missing; two processes creating it at once agree on one)."""
    path = Path(data_dir) / FILE_NAME
    host = name or socket.gethostname() or "unknown host"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = _create(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"the machine id file {path} cannot be read ({exc}): fix its "
                           "permissions, or move it aside to give this machine a new id") from exc
    if not _VALID.fullmatch(text):
        raise StorageError(
            f"the machine id file {path} holds {text[:40]!r}, not a machine id (8 to 64 letters, "
            "digits, '.', '_' or '-'): move it aside to give this machine a new id (its file "
            "sources then belong to the old id until indexed again)")
    return Machine(text, host)


def this_machine() -> Machine:
    """The machine of the data folder in use (``DESKMIND_HOME`` or the platform's)."""
    from deskmind.core.config.paths import Paths

    return load_machine(Paths.from_env().data_dir)


def _create(path: Path) -> str:
    new = uuid.uuid4().hex
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{new[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(new + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        # A hard link appears whole or not at all, and fails when the name exists: two
        # processes creating it at once both end with the one that was linked first.
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        from deskmind.core.memory.db import describe_os_error

        raise StorageError(f"this machine's id file {path} cannot be created: "
                           f"{describe_os_error(exc, path.parent)}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("this machine's id is %s (kept in %s)", new, path)
    return new


class MachineScope:
    """This store's machine, loaded when first needed (an empty memory, or one that only holds
    notes, never needs the data folder's id file), and what ``sources.machine`` holds for a uri.
    Thread-safe: loading twice gives the same id."""

    def __init__(self, machine: "Machine | Path | None" = None) -> None:
        """``machine``: the machine itself, or the data folder holding its id, or None for the
        data folder in use (``DESKMIND_HOME`` or the platform's)."""
        self._machine = machine if isinstance(machine, Machine) else None
        self._data_dir = Path(machine) if isinstance(machine, (str, Path)) else None
        self.registered = False  # whether this process has recorded its machine's name yet

    @property
    def machine(self) -> Machine:
        if self._machine is None:
            self._machine = (load_machine(self._data_dir) if self._data_dir is not None
                             else this_machine())
        return self._machine

    @property
    def id(self) -> str:
        return self.machine.id

    def key(self, uri: str) -> str:
        """What ``sources.machine`` holds for ``uri`` stored from this machine."""
        return self.id if is_machine_local(uri) else SHARED

    def register(self, tx: Any) -> None:
        """Record this machine's name (for display) in the transaction ``tx``: once a process."""
        if self.registered:
            return
        now = time.time()
        tx.execute(
            "INSERT INTO machines(id, name, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, last_seen = excluded.last_seen",
            (self.machine.id, self.machine.name, now, now))

    def committed(self, uris: Iterable[str]) -> None:
        """A transaction that called :meth:`register` for any of ``uris`` has committed: the
        machine's name is recorded, so later writes of this process skip it."""
        if any(self.key(u) for u in uris):
            self.registered = True


def machine_names(sql: Any) -> dict[str, str]:
    """``machine id -> host name`` of every machine that indexed files into this memory."""
    return dict(sql.query("SELECT id, name FROM machines"))


def machine_label(machine_id: str, names: dict[str, str], here: str) -> str:
    """How a file source's machine is shown: its host name, '(this machine)' for this one;
    '' for a shared source."""
    if not machine_id:
        return ""
    name = names.get(machine_id) or f"machine {machine_id[:8]}"
    return f"{name} (this machine)" if machine_id == here else name
