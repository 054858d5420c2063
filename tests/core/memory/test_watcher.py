"""The memory watcher's contract without Qt, on a real SQLite memory written by another
connection (the two-machine and UI tests drive it across processes)."""

from __future__ import annotations

from pathlib import Path

from deskmind.core.memory.watcher import MemoryWatcher


def test_the_watcher_reports_each_change_once_and_a_failure_once(tmp_path: Path) -> None:
    from deskmind.core.errors import StorageError
    from deskmind.core.memory.store import MemoryStore
    from tests.core.memory.helpers import note

    watched = MemoryStore(tmp_path / "m.db")
    writer = MemoryStore(tmp_path / "m.db")
    state = {"broken": False}
    changes: list[int] = []
    errors: list[str] = []

    def memory():
        if state["broken"]:
            raise StorageError("the memory database is away")
        return watched

    w = MemoryWatcher(memory, on_change=lambda: changes.append(1), on_error=errors.append)
    try:
        assert w.poll() is False  # the first read is the baseline
        assert w.poll() is False
        writer.put_source(note("a change from elsewhere"))
        assert w.poll() is True and len(changes) == 1
        assert w.poll() is False and len(changes) == 1
        state["broken"] = True
        assert w.poll() is False and w.poll() is False
        assert errors == ["the memory database is away"] and w.error == errors[0]
        state["broken"] = False
        assert w.poll() is True  # back: what happened meanwhile is unknown, so look again
        assert w.error is None
    finally:
        w.stop()
        watched.close()
        writer.close()
