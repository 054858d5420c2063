"""What is not a regular file (a FIFO, a socket, a device, a broken link) gets an outcome that
says what it is, is never opened (a FIFO would block), and is not kept in the source list; a
source whose file is gone, or became such a thing, goes on the next index or watch pass."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from deskmind.core.ingest.indexer import Indexer
from deskmind.core.ingest.outcomes import IndexSummary
from deskmind.core.ingest.walk import Found
from deskmind.core.ingest.watch import FolderWatcher
from deskmind.core.memory.ingest_state import StatusRow
from deskmind.core.memory.store import MemoryStore

FIFO = "not a regular file: a FIFO (named pipe)"


def _listed(store: MemoryStore) -> dict[str, str]:
    return {s.uri: s.status for s in store.list_sources()}


def _index(indexer: Indexer, paths: list[Path], **kw: object) -> IndexSummary:
    """Index in a thread that must finish: a FIFO opened for reading would block it forever."""
    out: list[IndexSummary] = []
    t = threading.Thread(target=lambda: out.append(indexer.index(paths, **kw)), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "indexing blocked (a FIFO was opened?)"
    return out[0]


@pytest.fixture
def odd_folder(tmp_path: Path):
    folder = tmp_path.resolve() / "w"
    folder.mkdir()
    (folder / "note.md").write_text("# Note\nThe heron waits by the weir.\n")
    os.mkfifo(folder / "pipe")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(folder / "app.sock"))
    (folder / "gone-link.md").symlink_to(folder / "nowhere.md")
    (folder / "null-link").symlink_to("/dev/null")
    yield folder
    sock.close()


@pytest.mark.usefixtures("on_both_backends")
def test_odd_files_get_an_outcome_and_are_not_listed(odd_folder: Path, store: MemoryStore) -> None:
    indexer = Indexer(store, None)
    s = _index(indexer, [odd_folder])
    said = {Path(o.path).name: (o.status, o.reason) for o in s.outcomes}
    assert said == {
        "note.md": ("indexed", None),
        "pipe": ("skipped", FIFO),
        "app.sock": ("skipped", "not a regular file: a socket"),
        "gone-link.md": ("skipped", "broken symbolic link (or a link loop)"),
        "null-link": ("skipped", "not a regular file: a character device"),
    }
    assert _listed(store) == {str(odd_folder / "note.md"): "indexed"}

    # Named on its own, a FIFO is not opened either.
    s = _index(indexer, [odd_folder / "pipe"])
    assert [(o.status, o.reason) for o in s.outcomes] == [("skipped", FIFO)]
    assert _listed(store) == {str(odd_folder / "note.md"): "indexed"}


@pytest.mark.usefixtures("on_both_backends")
def test_a_source_that_became_a_fifo_or_vanished_goes(odd_folder: Path, store: MemoryStore) -> None:
    indexer = Indexer(store, None)
    (odd_folder / "later.md").write_text("# Later\nA note that will be replaced by a pipe.\n")
    (odd_folder / "brief.md").write_text("# Brief\nA note that will be deleted.\n")
    _index(indexer, [odd_folder])
    assert set(_listed(store)) == {str(odd_folder / n) for n in ("note.md", "later.md", "brief.md")}
    # Rows an earlier version kept for odd files: they go too.
    store.ingest_state.record_statuses([
        StatusRow(str(odd_folder / name), "other", "skipped", reason, None, None, "private", None, False, None)
        for name, reason in (("pipe", FIFO), ("gone-link.md", "broken symbolic link (or a link loop)"))])
    assert len(_listed(store)) == 5

    (odd_folder / "later.md").unlink()
    os.mkfifo(odd_folder / "later.md")
    (odd_folder / "brief.md").unlink()
    s = _index(indexer, [odd_folder])
    removed = {Path(o.path).name: o.reason for o in s.outcomes if o.status == "removed"}
    assert removed == {"later.md": FIFO, "pipe": FIFO, "brief.md": "file no longer exists",
                       "gone-link.md": "broken symbolic link (or a link loop)"}
    assert _listed(store) == {str(odd_folder / "note.md"): "indexed"}


def test_a_fifo_swapped_in_after_the_scan_is_not_opened_for_long(tmp_path: Path, store: MemoryStore) -> None:
    real = tmp_path / "a.md"
    real.write_text("# A\n")
    st = real.stat()
    real.unlink()
    os.mkfifo(real)  # the scan saw a regular file; a FIFO is there when it is read
    prep = Indexer(store, None).prepare(Found(real, st, None), None, None)
    assert (prep.outcome.status, prep.outcome.reason) == ("skipped", FIFO)
    assert stat.S_ISFIFO(os.stat(real).st_mode)


@pytest.mark.usefixtures("on_both_backends")
def test_a_watch_pass_reports_a_fifo_and_drops_what_vanished(odd_folder: Path, store: MemoryStore) -> None:
    indexer = Indexer(store, None)
    watcher = FolderWatcher(indexer, [odd_folder])
    _index(indexer, [odd_folder])
    os.mkfifo(odd_folder / "new-pipe")
    (odd_folder / "new-link.md").symlink_to(odd_folder / "not-there.md")
    (odd_folder / "note.md").unlink()
    s = watcher.flush([str(odd_folder / n) for n in ("new-pipe", "new-link.md", "note.md")])
    said = {Path(o.path).name: (o.status, o.reason) for o in s.outcomes}
    assert said == {"new-pipe": ("skipped", FIFO), "note.md": ("removed", "deleted or moved away"),
                    "new-link.md": ("skipped", "broken symbolic link (or a link loop)")}
    assert _listed(store) == {}
