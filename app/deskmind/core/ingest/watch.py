"""Keep folders indexed as files change: watchdog events, debounced, then an incremental index.

Events only collect paths; after ``debounce_s`` of quiet (or ``max_wait_s`` of continuous
change) one worker thread indexes what changed and forgets what went. Editors that save by
writing a temp file and renaming produce bursts of events; the debounce turns each burst into
one small run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from deskmind.core.ingest.ignore import IGNORED_DIRS, default_reason, ignored_by_path
from deskmind.core.ingest.outcomes import FileOutcome, IndexSummary

log = logging.getLogger(__name__)


class _Collector(FileSystemEventHandler):
    def __init__(self, watcher: "FolderWatcher") -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for p in (event.src_path, getattr(event, "dest_path", "")):
            if p:
                self.watcher.touch(os.fsdecode(p))


class FolderWatcher:
    """Watches folders and re-indexes changes. ``start()``/``stop()`` from any thread;
    ``on_summary`` is called on the watcher's worker thread after each run."""

    def __init__(self, indexer: object, roots: Iterable[Path | str], *, debounce_s: float = 2.0,
                 max_wait_s: float = 30.0, on_summary: Callable[[IndexSummary], None] | None = None,
                 observer_factory: Callable[[], object] = Observer) -> None:
        self.indexer = indexer
        self.roots = [Path(os.path.abspath(os.path.expanduser(str(r)))) for r in roots]
        self.debounce_s = debounce_s
        self.max_wait_s = max_wait_s
        self.on_summary = on_summary or (lambda _s: None)
        self._observer_factory = observer_factory
        self._observer: object | None = None
        self._lock = threading.Condition()
        self._dirty: set[str] = set()
        self._first = 0.0
        self._last = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def touch(self, path: str) -> None:
        parts = Path(path).parts
        if any(part in IGNORED_DIRS for part in parts) or (parts and default_reason(parts[-1])):
            return  # .git churn, editor swap files, databases never trigger a run
        with self._lock:
            now = time.monotonic()
            if not self._dirty:
                self._first = now
            self._dirty.add(path)
            self._last = now
            self._lock.notify()

    def start(self, initial_scan: bool = True) -> None:
        for r in self.roots:
            if not r.is_dir():
                from deskmind.core.errors import UserInputError

                raise UserInputError(f"cannot watch {r}: not a folder")
        if initial_scan:
            self.on_summary(self.indexer.index(self.roots))
        obs = self._observer_factory()
        handler = _Collector(self)
        for r in self.roots:
            obs.schedule(handler, str(r), recursive=True)
        obs.start()
        self._observer = obs
        self._thread = threading.Thread(target=self._run, name="deskmind-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                while not self._dirty and not self._stop.is_set():
                    self._lock.wait()
                if self._stop.is_set():
                    return
                now = time.monotonic()
                quiet = now - self._last
                if quiet < self.debounce_s and now - self._first < self.max_wait_s:
                    self._lock.wait(self.debounce_s - quiet)
                    continue
                batch, self._dirty = self._dirty, set()
            try:
                self.on_summary(self.flush(batch))
            except Exception:  # a watcher must outlive one bad run
                log.exception("watch: indexing changes failed")

    def _root_of(self, p: Path) -> Path | None:
        return next((r for r in self.roots if p == r or r in p.parents), None)

    def flush(self, paths: Iterable[str]) -> IndexSummary:
        """Index the given changed paths now: existing files are indexed, vanished ones forgotten."""
        present: list[Path] = []
        gone: list[str] = []
        for s in sorted(set(paths)):
            p = Path(s)
            root = self._root_of(p)
            if root is None:
                continue
            if os.path.lexists(p):
                if p.is_dir():
                    present.append(p)  # a folder moved in: index it whole
                elif not ignored_by_path(p, root, getattr(self.indexer, "ignore", ())):
                    present.append(p)
            else:
                gone.append(s)
        if not present and not gone:
            return IndexSummary()
        self.runs += 1
        summary = self.indexer.index(present, remove_missing=True) if present else IndexSummary()
        store = self.indexer.store
        for s in gone:
            ids = store.resolve(s)  # the file, or everything under a vanished folder
            if ids:
                store.forget_ids(ids)
                summary.outcomes.append(FileOutcome(s, None, "removed", "deleted or moved away"))
        return summary
