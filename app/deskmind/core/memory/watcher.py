"""Noticing what others wrote: another process, or another machine on a shared database.

:class:`MemoryWatcher` reads the memory's ``data_version()`` (SQLite's ``PRAGMA data_version``,
PostgreSQL's ``changes`` counter) every ``interval`` seconds on a thread of its own and calls
``on_change`` when it moved. Reading a number once a second costs next to nothing on either
backend and needs no connection held open for LISTEN, so one mechanism serves both.

It also opens the memory (through the ``memory`` callable, e.g. ``lambda: core.store``), so a
database that cannot be reached at start is reported through ``on_error`` while the app keeps
running, and ``on_available`` follows when it can be reached again. The hooks run on the
watcher's thread: a UI adapter forwards them to its own thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from deskmind.core.errors import DeskmindError

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 1.0
# Waiting for an unreachable database grows to this between attempts.
MAX_RETRY_S = 15.0


class MemoryWatcher:
    def __init__(self, memory: Callable[[], Any], *, on_change: Callable[[], None],
                 on_error: Callable[[str], None] | None = None,
                 on_available: Callable[[], None] | None = None,
                 interval: float = DEFAULT_INTERVAL_S) -> None:
        self._memory = memory
        self.on_change = on_change
        self.on_error = on_error
        self.on_available = on_available
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.version: int | None = None  # the last one read
        self.error: str | None = None  # why the memory cannot be read now, or None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="memory-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; waits up to ``timeout`` for a read in flight. Any thread."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poll(self) -> bool:
        """Read the version once; True when it moved since the last read. Calls the hooks."""
        try:
            version = self._memory().data_version()
        except DeskmindError as exc:
            self._failed(str(exc))
            return False
        except Exception as exc:  # a driver error the backend did not translate
            log.debug("memory watcher read failed", exc_info=True)
            self._failed(f"the memory could not be read: {exc}")
            return False
        recovered = self.error is not None
        self.error = None
        if recovered:
            log.info("the memory can be read again")
            if self.on_available is not None:
                self.on_available()
        previous, self.version = self.version, version
        if previous is not None and version != previous:
            self.on_change()
            return True
        if recovered and previous is not None:
            self.on_change()  # what changed while it was unreachable is unknown
            return True
        return False

    def _failed(self, message: str) -> None:
        if message != self.error:
            log.warning("memory watcher: %s", message)
            self.error = message
            if self.on_error is not None:
                self.on_error(message)
        else:
            self.error = message

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # a failing hook must not end the watching
                log.exception("memory watcher hook failed")
            wait = self.interval if self.error is None else min(max(wait * 2, 1.0), MAX_RETRY_S)
            self._stop.wait(wait)
