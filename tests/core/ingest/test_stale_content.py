"""A changed file whose new content yields nothing to index loses what was stored for it; a read
that fails (permission denied, the file vanishing or changing while read) loses nothing."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from deskmind.core.ingest.types import Extracted, Section
from deskmind.core.memory.store import MemoryStore
from tests.core.ingest.conftest import chunks_of, index_without_read_rights, source_row

OLD = "The lighthouse keeper logged a storm petrel on the north jetty."


def _stored(store: MemoryStore, uri: Path) -> dict[str, int]:
    """What memory holds for a source: chunks, full-text rows, vectors, text, links."""
    count = lambda sql, *a: store.sql.query_one(sql, a)[0]  # noqa: E731
    sid = source_row(store, uri)["id"]
    idx = store.active_index()
    if store.sql.dialect == "sqlite":
        fts = count("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'petrel'")
        bits = count(f"SELECT count(*) FROM {idx.bits_table}") if idx else 0
    else:  # the tsvector is a column of the chunk; vectors have no second table
        fts = count("SELECT count(*) FROM chunks WHERE tsv @@ plainto_tsquery('english', 'petrel')")
        bits = count(f"SELECT count(*) FROM {idx.float_table}") if idx else 0
    return {
        "chunks": count("SELECT count(*) FROM chunks WHERE source_id = ?", sid),
        "fts": fts,
        "vectors": count(f"SELECT count(*) FROM {idx.float_table}") if idx else 0,
        "bits": bits,
        "documents": count("SELECT count(*) FROM documents WHERE source_id = ?", sid),
        "links": count("SELECT count(*) FROM source_links WHERE source_id = ?", sid),
    }


def _findable(core) -> bool:
    s = core.searcher()
    return any(OLD in h.text for mode in ("fts", "vector", "hybrid")
               for h in s.search("storm petrel lighthouse jetty", limit=5, mode=mode).hits)


@pytest.mark.parametrize("name, new_content, status, reason", [
    ("log.md", b"", "skipped", "empty file (zero bytes)"),
    ("log.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "failed",
     "binary content (NUL bytes), not text"),
    ("log.txt", random.Random(0).randbytes(4000).replace(b"\x00", b"\x01"), "failed",
     "bytes that decode in no known text encoding (not text?)"),
    ("log.md", b"   \n\n\t  \n", "skipped", "no text found in file"),
], ids=["emptied", "binary", "undecodable", "blank"])
@pytest.mark.usefixtures("on_both_backends")
def test_new_content_with_nothing_to_index_removes_the_old(tmp_path: Path, core, name: str, new_content: bytes,
                                                           status: str, reason: str) -> None:
    f = tmp_path / name
    f.write_text(f"# Log\n{OLD}\nSee [the chart](chart.md).\n")
    (tmp_path / "other.md").write_text("# Other\nSomething else entirely about gardens.\n")
    idx = core.indexer()
    idx.index([tmp_path])
    before = _stored(core.store, f)
    assert before["chunks"] == before["fts"] == before["documents"] == 1
    assert before["links"] == (1 if name.endswith(".md") else 0)
    assert before["vectors"] == before["bits"] == 2 and _findable(core)

    f.write_bytes(new_content)
    s = idx.index([tmp_path])
    assert (s.outcome(f).status, s.outcome(f).reason) == (status, reason)
    after = _stored(core.store, f)
    assert (after["chunks"], after["fts"], after["documents"], after["links"]) == (0, 0, 0, 0)
    assert after["vectors"] == after["bits"] == 1  # the other file's only
    assert not _findable(core)
    row = source_row(core.store, f)
    assert (row["status"], row["error"]) == (status, reason)  # the source stays, saying why
    assert core.store.integrity_check() == []
    # Unchanged since: nothing is read; content that is text again is indexed again.
    assert idx.index([tmp_path]).outcome(f).status == "unchanged"
    f.write_text(f"# Log\n{OLD}\n")
    os.utime(f, (time.time() + 5, time.time() + 5))
    assert idx.index([tmp_path]).outcome(f).status == "indexed" and _findable(core)


@pytest.mark.usefixtures("on_both_backends")
def test_a_file_vanishing_or_changing_while_read_keeps_what_was_stored(
        tmp_path: Path, store: MemoryStore, indexer) -> None:
    f = tmp_path / "notes.flaky"
    f.write_text(OLD)
    plain = lambda p, d: Extracted("x", d.decode(), [Section(d.decode())], "t")  # noqa: E731
    indexer.file_types.register([".flaky"], "text", plain)
    indexer.index([tmp_path])
    before = chunks_of(store, f)
    assert OLD in before[0][0]

    def vanishing(path: Path, data: bytes) -> Extracted:
        path.unlink()  # deleted while its extractor runs (a save by rename would do this)
        return plain(path, data)

    def rewriting(path: Path, data: bytes) -> Extracted:
        with open(path, "ab") as fh:
            fh.write(b" and more")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
        return plain(path, data)

    for extractor, why in ((vanishing, "file vanished while being read; will retry on next scan"),
                           (rewriting, "changed while being read; will retry on next scan")):
        f.write_text("A new entry that was being written.")
        indexer.file_types.register([".flaky"], "text", extractor)
        s = indexer.index([tmp_path])
        assert (s.outcome(f).status, s.outcome(f).reason) == ("failed", why)
        assert chunks_of(store, f) == before
        row = source_row(store, f)
        assert row["status"] == "indexed" and row["error"] == f"failed: {why}"
        if not f.exists():
            f.write_text(OLD)


def test_permission_denied_keeps_what_was_stored(tmp_path: Path, store: MemoryStore, indexer) -> None:
    """As in test_bad_input.test_permission_denied: a child without CAP_DAC_OVERRIDE when root."""
    tree = tmp_path / "tree"
    tree.mkdir()
    f = tree / "diary.md"
    f.write_text(f"# Diary\n{OLD}\n")
    indexer.index([tree])
    before = chunks_of(store, f)
    f.write_text("")  # changed (emptied), but the re-read will not be allowed
    os.chmod(f, 0o000)
    outcomes = index_without_read_rights(store.url, tree, restore=lambda: os.chmod(f, 0o600))
    assert outcomes[str(f)] == ("failed", "permission denied")
    assert chunks_of(store, f) == before and OLD in before[0][0]
    assert source_row(store, f)["status"] == "indexed"


@pytest.mark.usefixtures("on_both_backends")
def test_a_file_grown_past_the_size_cap_loses_its_old_text(tmp_path: Path, store: MemoryStore) -> None:
    from deskmind.core.ingest.indexer import Indexer

    f = tmp_path / "log.txt"
    f.write_text(OLD)
    idx = Indexer(store, None, max_file_bytes=200)
    idx.index([tmp_path])
    assert OLD in chunks_of(store, f)[0][0]
    f.write_text(OLD * 10)
    s = idx.index([tmp_path])
    assert s.outcome(f).status == "skipped" and s.outcome(f).reason.startswith("too large")
    assert chunks_of(store, f) == [] and source_row(store, f)["status"] == "skipped"
    # A lowered cap alone (the file unchanged) is no reason to drop anything.
    g = tmp_path / "kept.txt"
    g.write_text(OLD)
    Indexer(store, None).index([g])
    assert Indexer(store, None, max_file_bytes=10).index([g]).outcome(g).status == "unchanged"
    assert OLD in chunks_of(store, g)[0][0]
