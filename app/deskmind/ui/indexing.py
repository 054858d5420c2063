"""Runs indexing requests one after another in a low-priority child process.

The child (:mod:`deskmind.ui.index_worker`) is driven with QProcess: its output is read by the
Qt event loop as it arrives (no thread here), each progress line becomes an ``IndexEvent`` on the
bridge, and cancelling is a ``cancel`` line: the child stops within a second, killing a parser
process busy with a file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from types import SimpleNamespace
from typing import Any

from PySide6.QtCore import QObject, QProcess, Signal

from deskmind.ui.bridge import CoreBridge

log = logging.getLogger(__name__)

STOP_GRACE_S = 2.0  # under the quit's bound for one step


class IndexingService(QObject):
    started = Signal(list)          # the paths of the run
    finished = Signal(dict)         # IndexSummary.to_dict(), plus "paths" and "cancelled"
    failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, paths: Any, bridge: CoreBridge, python: str | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paths = paths              # the core's Paths: the child opens the same memory
        self.bridge = bridge
        self.python = python or sys.executable
        self.queue: list[list[str]] = []
        self.paused = False
        self.running: list[str] | None = None
        self.proc: QProcess | None = None
        self._buf = b""
        self._result: dict | None = None
        self._error: str | None = None
        self._requeue = False

    def index(self, paths: list[str]) -> None:
        """Queue a run; starts now unless paused or another run is going. GUI thread."""
        self.queue.append([str(p) for p in paths])
        self._next()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if paused and self.running is not None:
            # Stop between files; the run goes back to the front of the queue (files already
            # done are skipped cheaply when it resumes).
            self._requeue = True
            self._send_cancel()
        elif not paused:
            self._next()

    def cancel(self) -> None:
        self.queue.clear()
        self._send_cancel()

    def _send_cancel(self) -> None:
        if self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning:
            self.proc.write(b"cancel\n")

    def _next(self) -> None:
        if self.paused or self.running is not None or not self.queue:
            return
        paths = self.queue.pop(0)
        self.running = paths
        self._buf, self._result, self._error, self._requeue = b"", None, None, False
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        proc.readyReadStandardOutput.connect(self._read)
        proc.finished.connect(self._exited)
        proc.errorOccurred.connect(self._proc_error)
        self.proc = proc
        p = self.paths
        proc.start(self.python, ["-m", "deskmind.ui.index_worker", str(p.data_dir), str(p.config_dir),
                                 str(p.cache_dir), *paths])
        self.started.emit(paths)
        self.busy_changed.emit(True)

    def _read(self) -> None:
        assert self.proc is not None
        self._buf += bytes(self.proc.readAllStandardOutput().data())
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("index worker said: %s", line[:200])
                continue
            if "event" in msg:
                # A plain record with IndexEvent's fields: importing the indexer here would load
                # every extractor (PDF, DOCX, tree-sitter...) on the GUI thread.
                self.bridge.on_index_event(SimpleNamespace(**msg["event"]))
            elif "summary" in msg:
                self._result = msg["summary"]
            elif "error" in msg:
                self._error = msg["error"]

    def _proc_error(self, err: QProcess.ProcessError) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self._error = f"could not start the indexing process ({self.python})"
            self._exited(-1, QProcess.ExitStatus.CrashExit)

    def _exited(self, code: int, status: QProcess.ExitStatus) -> None:
        if self.running is None:
            return
        self._read()
        paths, self.running = self.running, None
        proc, self.proc = self.proc, None
        if self._requeue:
            self.queue.insert(0, paths)
        if self._result is not None:
            self._result["paths"] = paths
            self.finished.emit(self._result)
        else:
            err = self._error
            if err is None and proc is not None:
                tail = bytes(proc.readAllStandardError().data()).decode(errors="replace").strip().splitlines()
                err = f"the indexing process stopped ({code}): " + (tail[-1] if tail else "no message")
            self.failed.emit(err or "indexing failed")
        if proc is not None:
            proc.deleteLater()
        if self.queue and not self.paused:
            self._next()
        else:
            self.busy_changed.emit(False)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Quit (GUI loop): ask the child to stop between files and wait for it; one still
        busy after ``grace_s`` (embedding its last batch, a huge file) is ended. Each batch is
        one transaction, so what it committed stays and the rest is indexed next time."""
        self.queue.clear()
        proc = self.proc
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            return
        exited = asyncio.get_running_loop().create_future()
        proc.finished.connect(lambda *_a: exited.done() or exited.set_result(None))
        self._send_cancel()
        try:
            await asyncio.wait_for(exited, grace_s)
        except asyncio.TimeoutError:
            log.info("the indexing process was still busy %.0f s after quitting: ended it; "
                     "what it had not stored is indexed next time", grace_s)
        finally:
            if proc.state() != QProcess.ProcessState.NotRunning:
                proc.kill()
                proc.waitForFinished(1000)
