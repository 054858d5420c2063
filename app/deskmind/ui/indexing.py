"""Runs indexing requests one after another in a worker, with pause and cooperative cancel."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from deskmind.ui.bridge import CoreBridge
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)


class IndexingService(QObject):
    started = Signal(list)          # the paths of the run
    finished = Signal(dict)         # IndexSummary.to_dict(), plus "paths"
    failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, indexer: Callable[[], Any], bridge: CoreBridge, workers: Workers,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._indexer = indexer
        self.bridge = bridge
        self.workers = workers
        self.queue: list[list[str]] = []
        self.paused = False
        self.running: list[str] | None = None
        self._cancel = threading.Event()

    def index(self, paths: list[str]) -> None:
        """Queue a run; starts now unless paused or another run is going. GUI thread."""
        self.queue.append([str(p) for p in paths])
        self._next()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if paused and self.running is not None:
            # Stop between files; the interrupted run goes back to the front of the queue
            # (unchanged files are skipped cheaply when it resumes).
            self.queue.insert(0, self.running)
            self._cancel.set()
        elif not paused:
            self._next()

    def cancel(self) -> None:
        self.queue.clear()
        self._cancel.set()

    def _next(self) -> None:
        if self.paused or self.running is not None or not self.queue:
            return
        paths = self.queue.pop(0)
        self.running = paths
        self._cancel = threading.Event()
        cancel = self._cancel
        self.started.emit(paths)
        self.busy_changed.emit(True)

        def work() -> dict:
            summary = self._indexer().index(paths, on_event=self.bridge.on_index_event, cancel=cancel)
            d = summary.to_dict()
            d["paths"] = paths
            d["cancelled"] = cancel.is_set()
            return d

        self.workers.submit(work, done=self._done, failed=self._failed)

    def _done(self, summary: dict) -> None:
        self.running = None
        self.finished.emit(summary)
        self._after()

    def _failed(self, exc: BaseException) -> None:
        self.running = None
        log.error("indexing failed", exc_info=exc)
        self.failed.emit(str(exc))
        self._after()

    def _after(self) -> None:
        if self.queue and not self.paused:
            self._next()
        else:
            self.busy_changed.emit(False)
