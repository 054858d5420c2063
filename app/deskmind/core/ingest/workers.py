"""Parser processes: where parsers that can run away (PDF, HTML, DOCX, e-mail, gzip) read a file.

Each process serves one file at a time for one indexing thread. Its address space is capped
with ``RLIMIT_AS`` (a parser that needs more gets a MemoryError there, not the machine's
memory), and the thread that sent the file waits for the answer while watching a deadline and
the run's cancel flag: past the deadline, or on cancel, the process is killed at once (no
parser has to cooperate) and a fresh one takes its place for the next file. This is Apache
Tika's forked-parser idea; the budgets of :mod:`deskmind.core.ingest.budget` still apply inside.

Processes are never forked from the indexer's process: it runs threads (and the desktop app
runs Qt), and forking a threaded process is unsafe. Where it exists (Linux, macOS) the
"forkserver" method forks them from a small single-threaded server process that has the parsers
imported already (:data:`PRELOAD`), so a start (or a replacement after a kill) takes about 10 ms
rather than the 0.2-0.4 s of a fresh interpreter; elsewhere (Windows) "spawn" starts them.
Nothing here imports Qt.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from deskmind.core.ingest import budget as budget_mod
from deskmind.core.ingest.types import Extracted, ExtractionError, FileType

log = logging.getLogger(__name__)

POLL_S = 0.05           # how often a waiting thread looks at the cancel flag and the deadline
KILL_GRACE_S = 2.0      # past the time budget, a parser that did not stop by itself is killed
START_TIMEOUT_S = 60.0  # a process that cannot even start (a machine under heavy load)
OWNER_CHECK_S = 0.5     # how often a parser process checks that its indexer still exists
# Imported once by the fork server; every parser process starts with them loaded.
PRELOAD = ["deskmind.core.ingest.workers", "deskmind.core.ingest.extractors.pdf",
           "deskmind.core.ingest.extractors.htmlpage", "deskmind.core.ingest.extractors.office",
           "deskmind.core.ingest.extractors.mail", "deskmind.core.ingest.extractors.gzipped", "pypdf"]


def start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class Cancelled(Exception):
    """The run was cancelled while this file was being parsed (its parser process was killed)."""


class ParserStopped(ExtractionError):
    """The parser process was stopped from outside: over time, over memory, or it crashed."""


# -- the parser process ------------------------------------------------------------------------

def _watch_owner(owner: int) -> None:
    """End this process when the indexer that owns it is gone, even killed with SIGKILL: a parser
    stuck in a loop must not outlive it. (Its pipe closing is not enough: the parser is busy, and
    a forked parser keeps its fork server alive.)"""
    while True:
        time.sleep(OWNER_CHECK_S)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(1)
        except OSError:  # not ours to signal: it exists
            pass


def _serve(conn: Connection, memory_bytes: int, owner: int) -> None:
    """The parser process: one file at a time until the pipe closes."""
    if os.name == "posix":  # os.kill(pid, 0) only asks there
        threading.Thread(target=_watch_owner, args=(owner,), daemon=True, name="owner-watch").start()
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    except (ImportError, ValueError, OSError) as exc:  # not on this platform: the time budget holds
        log.warning("parser memory limit not set: %s", exc)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the indexer's to handle
    conn.send(("ready", os.getpid()))
    while True:
        try:
            extract, path, data, budget = conn.recv()
        except (EOFError, OSError):
            return
        try:
            ex = budget_mod.run_metered(extract, Path(path), data, budget)
            reply: tuple[str, Any] = ("ok", ex)
        except MemoryError:
            reply = ("memory", None)
        except ExtractionError as exc:
            reply = ("refused", (type(exc).__name__, str(exc)))
        except RecursionError:
            reply = ("refused", ("ExtractionError", "too deeply nested to parse"))
        except Exception as exc:  # a parser bug: reported like one in-process, logged by the indexer
            reply = ("bug", (f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        del data
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory", None))
        if reply[0] == "memory":
            return  # memory may be fragmented past use: a fresh process serves the next file


# -- the indexer's side ------------------------------------------------------------------------

@dataclass
class _Process:
    proc: Any
    conn: Connection
    pid: int = 0


@dataclass
class PoolStats:
    started: int = 0
    killed: int = 0
    start_s: list[float] = field(default_factory=list)


class ParserPool:
    """Parser processes for up to ``size`` indexing threads at once. Thread-safe."""

    def __init__(self, size: int, memory_mb: int, *, method: str | None = None) -> None:
        self.size = max(1, size)
        self.memory_bytes = int(memory_mb) * 1024 * 1024
        self.memory_mb = int(memory_mb)
        self.method = method or start_method()
        self._ctx = multiprocessing.get_context(self.method)
        if self.method == "forkserver":
            self._ctx.set_forkserver_preload(PRELOAD)  # takes effect when the server starts
        self._idle: list[_Process] = []
        self._busy: dict[int, _Process] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.stats = PoolStats()

    def _start(self) -> _Process:
        t0 = time.perf_counter()
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_serve, args=(child, self.memory_bytes, os.getpid()),
                                 name="deskmind-parser", daemon=True)
        proc.start()
        child.close()
        p = _Process(proc, parent)
        if not parent.poll(START_TIMEOUT_S):
            self._kill(p)
            raise ExtractionError(f"a parser process did not start within {START_TIMEOUT_S:.0f} s")
        try:
            _, p.pid = parent.recv()
        except (EOFError, OSError) as exc:
            self._kill(p)
            raise ExtractionError(f"a parser process failed to start: {exc}") from exc
        with self._lock:
            self.stats.started += 1
            self.stats.start_s.append(time.perf_counter() - t0)
        return p

    def _checkout(self) -> _Process:
        with self._lock:
            if self._closed:
                raise Cancelled()
            p = self._idle.pop() if self._idle else None
        if p is None or not p.proc.is_alive():
            p = self._start()
        with self._lock:
            self._busy[id(p)] = p
        return p

    def _checkin(self, p: _Process) -> None:
        with self._lock:
            self._busy.pop(id(p), None)
            if not self._closed and p.proc.is_alive():
                self._idle.append(p)
                return
        self._kill(p)

    def _kill(self, p: _Process) -> None:
        try:
            p.proc.kill()
            p.proc.join(5)
        except Exception:  # already gone
            pass
        p.conn.close()

    def run(self, extract: Callable[[Path, bytes], Extracted], path: Path, data: bytes,
            budget: budget_mod.Budget, cancel: threading.Event | None = None) -> Extracted:
        """Extract one file in a parser process (an indexing thread; blocks until done).

        Raises the extractor's :class:`ExtractionError`, :class:`ParserStopped` when the process
        had to be stopped, :class:`Cancelled` when ``cancel`` was set meanwhile."""
        p = self._checkout()
        deadline = time.monotonic() + budget.max_seconds + KILL_GRACE_S
        try:
            p.conn.send((extract, str(path), data, budget))
            while not p.conn.poll(POLL_S):
                if cancel is not None and cancel.is_set():
                    self._stop(p)
                    raise Cancelled()
                if time.monotonic() > deadline:
                    self._stop(p)
                    raise ParserStopped(
                        f"refused: parsing took longer than {budget.max_seconds:g} s and was stopped "
                        f"({budget.limits()[1]}; {budget_mod.WHERE})")
                if not p.proc.is_alive():
                    break
            try:
                status, value = p.conn.recv()
            except (EOFError, OSError):
                code = self._exit_code(p)
                self._stop(p)
                raise ParserStopped(self._died(code)) from None
        except (BrokenPipeError, ConnectionResetError):
            code = self._exit_code(p)
            self._stop(p)
            raise ParserStopped(self._died(code)) from None
        except BaseException:
            if p.proc.is_alive() and id(p) in self._busy:
                self._stop(p)  # an interrupted exchange leaves the pipe out of step
            raise
        if status == "memory":
            self._stop(p)  # it ends itself after a MemoryError: never hand it another file
        else:
            self._checkin(p)
        if status == "ok":
            return value
        if status == "memory":
            raise ParserStopped(
                f"refused: parsing needed more than {self.memory_mb:,} MB of memory "
                f"({budget_mod.parser_limit(self.memory_mb)}; {budget_mod.WHERE})")
        if status == "refused":
            name, message = value
            raise _ERRORS.get(name, ExtractionError)(message)
        summary, trace = value
        log.error("parser failed on %s:\n%s", path, trace)
        raise ExtractionError(f"could not parse: {summary}")

    @staticmethod
    def _exit_code(p: _Process) -> int | None:
        """How a process whose pipe closed ended (it may take a moment to be reaped)."""
        p.proc.join(2)
        return p.proc.exitcode

    def _died(self, code: int | None) -> str:
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if -code == signal.SIGKILL:
                return ("the parser was killed (SIGKILL), most likely for memory: "
                        f"{budget_mod.parser_limit(self.memory_mb)}")
            return f"the parser crashed on this file ({name})"
        return f"the parser process ended on this file (exit code {code})"

    def _stop(self, p: _Process) -> None:
        with self._lock:
            self._busy.pop(id(p), None)
            self.stats.killed += 1
        self._kill(p)

    def close(self) -> None:
        """Stop every process, idle or busy (a busy one's thread gets :class:`Cancelled` or a
        stopped-parser error)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy.values())
        for p in busy:
            self._stop(p)
        for p in idle:
            try:
                p.conn.close()  # the process sees the pipe close and ends
            except OSError:
                pass
            p.proc.join(1)
            if p.proc.is_alive():
                self._kill(p)

    def __enter__(self) -> "ParserPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _error_types() -> dict[str, type[ExtractionError]]:
    from deskmind.core.ingest.types import DamagedFile, Unsupported

    return {"ExtractionError": ExtractionError, "DamagedFile": DamagedFile, "Unsupported": Unsupported,
            "BudgetExceeded": budget_mod.BudgetExceeded, "ParserStopped": ParserStopped}


_ERRORS = _error_types()


class Extraction:
    """How one indexing run extracts files: under its budget, the parsers that can run away in
    a :class:`ParserPool` (when there is one), the others on the calling thread."""

    def __init__(self, budget: budget_mod.Budget, pool: ParserPool | None,
                 cancel: threading.Event | None = None) -> None:
        self.budget, self.pool, self.cancel = budget, pool, cancel

    def extract(self, ft: FileType, path: Path, data: bytes) -> Extracted:
        assert ft.extractor is not None
        if ft.isolate and self.pool is not None:
            return self.pool.run(ft.extractor, path, data, self.budget, self.cancel)
        return budget_mod.run_metered(ft.extractor, path, data, self.budget)
