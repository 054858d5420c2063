"""The one writer of settings.toml: locked, atomic, checked, and it tells who listens.

Every change is a read-modify-write of one table, done under a threading lock (writers in this
process) and a file lock beside the file (writers in other processes: the tray app, the CLI,
``deskmind serve``), so two writers changing different keys both land. The file is edited with
tomlkit, so comments, formatting and tables this version does not know survive. The whole new
document is checked against the schema before anything is written, and it is written to a
temporary file with a unique name in the same folder, then renamed over the old one: a crash
or a refused value leaves the previous file whole.

Subscribers are called after each change, on the writer's thread, with the new settings and the
names of the tables that changed; a Qt subscriber hops to the GUI thread itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterator

import tomlkit
from filelock import FileLock, Timeout
from tomlkit.exceptions import ParseError

from deskmind.core.config.files import atomic_write_text
from deskmind.core.config.settings import (Settings, load_settings, parse_settings,
                                           read_settings_text, section_types)
from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)

Subscriber = Callable[[Settings, frozenset[str]], None]


class SettingsStore:
    """settings.toml for one process. Thread-safe; every method may block on the file lock."""

    def __init__(self, path: Path, settings: Settings | None = None, *,
                 lock_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._settings = settings if settings is not None else load_settings(self.path)
        self._lock = threading.Lock()
        self._file_lock = FileLock(str(self.path.with_name(self.path.name + ".lock")),
                                   timeout=lock_timeout_s, thread_local=False)
        self._subscribers: list[Subscriber] = []

    @property
    def settings(self) -> Settings:
        """The settings as last read or written by this process."""
        return self._settings

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(settings, changed_tables)`` after every change; returns the unsubscriber."""
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)
        return unsubscribe

    def update(self, table: str, values: dict[str, Any]) -> Settings:
        """Set keys of one table (a value of None removes the key, back to its default), keeping
        everything else in the file; returns the new settings. A value the schema refuses
        raises :class:`UserInputError` and writes nothing."""
        cls = section_types().get(table)
        if cls is None:
            raise UserInputError(f"settings have no [{table}] table "
                                 f"(known: {', '.join(sorted(section_types()))})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserInputError(f"[{table}] has no setting {', '.join(unknown)}")
        with self._lock, self._locked_file():
            doc = self._read_document()
            section = doc.get(table)
            if section is None:
                section = doc[table] = tomlkit.table()
            elif not isinstance(section, dict):
                raise UserInputError(f"{self.path} [{table}] must be a table of settings")
            for key, value in values.items():
                if value is None:
                    section.pop(key, None)
                else:
                    section[key] = value
            new = parse_settings(doc.unwrap(), str(self.path))
            # Through a symbolic link (settings kept in a dotfiles folder) the file it points to
            # is replaced, and the link stays.
            atomic_write_text(Path(os.path.realpath(self.path)), tomlkit.dumps(doc))
            old, self._settings = self._settings, new
            subscribers = list(self._subscribers)
        self._notify(subscribers, old, new)
        return new

    def reload(self) -> Settings:
        """Read the file again (another process may have written it) and notify on changes."""
        with self._lock, self._locked_file():
            new = load_settings(self.path)
            old, self._settings = self._settings, new
            subscribers = list(self._subscribers)
        self._notify(subscribers, old, new)
        return new

    @staticmethod
    def _notify(subscribers: list[Subscriber], old: Settings, new: Settings) -> None:
        """Outside the locks, so that a subscriber may read or write settings itself."""
        changed = frozenset(name for name in section_types()
                            if getattr(old, name) != getattr(new, name))
        if not changed:
            return
        for fn in subscribers:
            try:
                fn(new, changed)
            except Exception:  # one broken listener must not undo a saved change
                log.exception("a settings subscriber failed on %s", sorted(changed))

    def _read_document(self) -> tomlkit.TOMLDocument:
        text = read_settings_text(self.path)
        try:
            tomllib.loads(text)      # tomllib's messages name the line and column
            return tomlkit.parse(text)
        except (tomllib.TOMLDecodeError, ParseError) as exc:
            raise UserInputError(f"{self.path}: {exc}; fix or remove the file, "
                                 "nothing was changed") from exc

    @contextlib.contextmanager
    def _locked_file(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file_lock.acquire()
        except Timeout:
            raise UserInputError(f"{self.path} is locked by another Deskmind for more than "
                                 f"{self._file_lock.timeout:g} s; try again") from None
        except OSError as exc:
            raise UserInputError(f"cannot write settings in {self.path.parent}: "
                                 f"{exc.strerror or exc}") from exc
        try:
            yield
        finally:
            self._file_lock.release()
