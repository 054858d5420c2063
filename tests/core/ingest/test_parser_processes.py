"""Parser processes: a parser that runs away is stopped from outside (time, memory, crash), the
process is replaced, cancel kills it at once, and no parser process imports Qt."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from deskmind.core.ingest.budget import Budget
from deskmind.core.ingest.types import Extracted, ExtractionError, Section
from deskmind.core.ingest.workers import Cancelled, ParserPool, ParserStopped


# Parsers with bugs no budget foresaw (module level: a parser process is sent them by name).
def spin_forever(path: Path, data: bytes) -> Extracted:
    while True:
        pass


def allocate_without_limit(path: Path, data: bytes) -> Extracted:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def crash(path: Path, data: bytes) -> Extracted:
    os.abort()


def buggy(path: Path, data: bytes) -> Extracted:
    raise ValueError("parser bug")


def echo(path: Path, data: bytes) -> Extracted:
    text = data.decode()
    return Extracted(title=path.name, text=text, sections=[Section(text)], extractor="echo")


def qt_modules(path: Path, data: bytes) -> Extracted:
    names = ",".join(sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "qasync")))
    return Extracted(title=str(os.getpid()), text=names, sections=[], extractor="probe")


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_overrun_is_killed_and_the_process_replaced(method: str) -> None:
    with ParserPool(1, 1024, method=method) as pool:
        t0 = time.monotonic()
        with pytest.raises(ParserStopped, match=r"refused: parsing took longer than 1 s and was stopped "
                                                r"\(time budget per file: 1 s; Settings → Indexing\)"):
            pool.run(spin_forever, Path("a.html"), b"x", Budget(max_seconds=1))
        assert time.monotonic() - t0 < 1 + 2.0 + 1.5  # budget + kill grace + slack
        assert pool.run(echo, Path("b.txt"), b"still here", Budget()).text == "still here"
        assert pool.stats.started == 2 and pool.stats.killed == 1


def test_memory_limit_refuses_the_file_not_the_machine() -> None:
    with ParserPool(1, 256) as pool:
        with pytest.raises(ParserStopped, match=r"refused: parsing needed more than 256 MB of memory "
                                                r"\(memory limit per parser: 256 MB"):
            pool.run(allocate_without_limit, Path("a.pdf"), b"x", Budget())
        assert pool.run(echo, Path("b.txt"), b"next file", Budget()).text == "next file"


def test_a_crash_is_reported_and_contained() -> None:
    with ParserPool(1, 1024) as pool:
        with pytest.raises(ParserStopped, match=r"the parser crashed on this file \(SIGABRT\)"):
            pool.run(crash, Path("a.docx"), b"x", Budget())
        assert pool.run(echo, Path("b.txt"), b"ok", Budget()).text == "ok"


def test_a_parser_bug_reads_as_it_does_in_process(caplog: pytest.LogCaptureFixture) -> None:
    with ParserPool(1, 1024) as pool:
        with pytest.raises(ExtractionError, match=r"^could not parse: ValueError: parser bug$"):
            pool.run(buggy, Path("a.pdf"), b"x", Budget())
        assert pool.stats.killed == 0  # a bug is an answer: the process serves the next file
    assert "raise ValueError" in caplog.text


def test_cancel_kills_a_stuck_parser_within_a_second() -> None:
    import psutil

    cancel = threading.Event()
    with ParserPool(1, 1024) as pool:
        pool.run(echo, Path("warm.txt"), b"warm", Budget())  # the process is up
        pid = next(iter(pool._idle)).pid
        threading.Timer(0.5, cancel.set).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            pool.run(spin_forever, Path("a.html"), b"x", Budget(max_seconds=600), cancel)
        assert time.monotonic() - t0 < 0.5 + 1.0
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_parser_processes_do_not_import_qt() -> None:
    import PySide6.QtCore  # noqa: F401  (the process that indexes may have Qt loaded)

    assert "PySide6.QtCore" in sys.modules
    with ParserPool(1, 1024) as pool:
        ex = pool.run(qt_modules, Path("probe"), b"", Budget())
    assert ex.title != str(os.getpid()) and ex.text == ""
