"""Raw material apart from what is derived from it; the derived parts can always be rebuilt."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from deskmind.core.ingest.status import StatusRecord, record_statuses
from deskmind.core.memory import vectors
from deskmind.core.memory.models import NewChunk
from deskmind.core.memory.reembed import reembed
from deskmind.core.memory.search import SearchFilters

from tests.core.memory.helpers import count, note, query, rows, scalar

MARKDOWN = """# Garden journal

## Tomatoes

The tomato seedlings went into the greenhouse on the fourth of May.
They need watering every second day while the weather stays dry.

## Beekeeping

The second hive swarmed in June; the queen settled in the old apple tree.
"""

TEXT = "Quarterly budget review.\n\nTravel costs rose because of the conference in Lisbon.\n"


def _files(tmp_path: Path) -> tuple[Path, Path]:
    d = tmp_path / "docs"
    d.mkdir()
    md, txt = d / "garden.md", d / "budget.txt"
    md.write_text(MARKDOWN, encoding="utf-8")
    txt.write_text(TEXT, encoding="utf-8")
    os.utime(md, (1_700_000_000, 1_700_000_000))
    return md, txt


@pytest.mark.usefixtures("on_both_backends")
def test_source_text_and_chunks_are_kept_apart(core, tmp_path: Path) -> None:
    md, txt = _files(tmp_path)
    summary = core.indexer().index([md.parent])
    assert summary.count("indexed") == 2
    store = core.store

    (sid,) = core.store.resolve(str(md))
    src = core.store.get_source(sid)
    assert src.uri == str(md)
    assert src.kind == "markdown"
    assert src.title == "Garden journal"
    assert src.content_hash == hashlib.sha256(md.read_bytes()).hexdigest()
    assert src.size == md.stat().st_size
    assert src.mtime == 1_700_000_000
    assert src.privacy == "private"
    assert src.status == "indexed" and src.error is None
    assert src.chunk_count >= 1

    # The extracted text is its own row, apart from the raw source and the chunks.
    text, extractor = query(store, "SELECT text, extractor FROM documents WHERE source_id = ?", sid)[0]
    assert "queen settled in the old apple tree" in text
    assert extractor

    # Chunks carry locators: heading path and line range for Markdown.
    chunks = query(store, "SELECT ord, text, locator FROM chunks WHERE source_id = ? ORDER BY ord", sid)
    assert [c[0] for c in chunks] == list(range(len(chunks)))
    locs = [json.loads(c[2]) for c in chunks]
    bee = next(loc for (_, t, _), loc in zip(chunks, locs) if "hive swarmed" in t)
    assert bee["heading"][-1] == "Beekeeping"
    lines = MARKDOWN.splitlines()
    assert "hive swarmed" in "\n".join(lines[bee["line_start"] - 1:bee["line_end"]])

    (tid,) = core.store.resolve(str(txt))
    tloc = [json.loads(r[0]) for r in query(store, "SELECT locator FROM chunks WHERE source_id = ?", tid)]
    assert all("line_start" in loc and "line_end" in loc for loc in tloc)

    # Every chunk has a full-text row and a vector in the active index.
    idx = core.store.active_index()
    n = count(store, "SELECT count(*) FROM chunks")
    assert count(store, f"SELECT count(*) FROM {idx.float_table}") == n
    if store.backend == "sqlite":
        assert count(store, f"SELECT count(*) FROM {idx.bits_table}") == n
    assert idx.model_id == core.embedder().model_id and idx.dim == core.embedder().dim
    assert core.store.integrity_check() == []


def test_full_text_index_can_be_rebuilt_from_the_chunks(core) -> None:
    core.remember(note(["the violin was tuned a quarter tone flat", "a recipe for lemon cake"]))
    searcher = core.searcher()
    before = [h.chunk_id for h in searcher.search("violin", mode="fts").hits]
    assert before
    core.store.writer.transaction(
        lambda c: c.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('delete-all')"))
    assert searcher.search("violin", mode="fts").hits == []
    core.store.writer.transaction(
        lambda c: c.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')"))
    assert [h.chunk_id for h in searcher.search("violin", mode="fts").hits] == before
    assert core.store.integrity_check() == []


def test_vectors_can_be_rebuilt_from_the_chunks(core) -> None:
    ids = [core.remember(note(t)) for t in (
        "the violin was tuned a quarter tone flat",
        "a recipe for lemon cake with poppy seeds",
        "the train to Glasgow leaves at nine")]
    old = core.store.active_index()
    conn = core.store.reader()
    before = {r[0]: r[1] for r in rows(conn, f"SELECT chunk_id, embedding FROM {old.float_table}")}
    # Throw the vectors away entirely, then rebuild them from the chunks.
    core.store.writer.transaction(lambda c: vectors.drop_index(c, old))
    assert core.store.active_index() is None
    assert core.searcher().search("baking dessert", mode="vector").hits == []
    res = reembed(core.store, core.embedder())
    new = core.store.active_index()
    assert res.embedded == 3 and new.id != old.id and new.model_id == old.model_id
    after = {r[0]: r[1] for r in rows(conn, f"SELECT chunk_id, embedding FROM {new.float_table}")}
    assert after.keys() == before.keys()
    import numpy as np
    for cid in before:
        a = np.frombuffer(before[cid], dtype="<f4")
        b = np.frombuffer(after[cid], dtype="<f4")
        assert float(a @ b) > 0.999
    hit = core.searcher().search("baking dessert", mode="vector").hits[0]
    assert hit.source_id == ids[1]


@pytest.mark.usefixtures("on_both_backends")
def test_put_source_replaces_everything_derived_atomically(core) -> None:
    draft = note(["first version about pelicans", "shared paragraph on harbours"],
                 uri="deskmind://note/replace")
    sid = core.remember(draft)
    store = core.store
    idx = core.store.active_index()
    old_ids = [r[0] for r in query(store, "SELECT id FROM chunks WHERE source_id = ?", sid)]
    draft.chunks = [NewChunk("second version about cormorants"), NewChunk("shared paragraph on harbours")]
    assert core.remember(draft) == sid
    new_ids = [r[0] for r in query(store, "SELECT id FROM chunks WHERE source_id = ?", sid)]
    assert not set(old_ids) & set(new_ids)
    for cid in old_ids:
        assert count(store, f"SELECT count(*) FROM {idx.float_table} WHERE chunk_id = ?", cid) == 0
        if store.backend == "sqlite":
            assert count(store, f"SELECT count(*) FROM {idx.bits_table} WHERE rowid = ?", cid) == 0
    assert count(store, f"SELECT count(*) FROM {idx.float_table}") == 2
    assert core.searcher().search("pelicans", mode="fts").hits == []
    assert core.searcher().search("cormorants", mode="fts").hits[0].source_id == sid
    assert core.store.integrity_check() == []


@pytest.mark.usefixtures("on_both_backends")
def test_a_failed_read_keeps_what_was_indexed(core) -> None:
    sid = core.remember(note("the ferry timetable for the winter months", uri="/tmp/ferry.txt", kind="text"))
    record_statuses(core.store, [StatusRecord("/tmp/ferry.txt", "text", "failed", "permission denied")])
    src = core.store.get_source(sid)
    assert src.status == "indexed" and src.chunk_count == 1
    assert "permission denied" in src.error
    hits = core.searcher().search("ferry timetable", filters=SearchFilters(source_ids=[sid])).hits
    assert hits and hits[0].source_id == sid


@pytest.mark.usefixtures("on_both_backends")
def test_document_text_is_the_whole_stored_text_or_none(core) -> None:
    sid = core.remember(note("the lighthouse keeper's log for March", uri="/tmp/lighthouse.txt", kind="text"))
    assert core.store.document_text(sid) == "the lighthouse keeper's log for March"
    assert core.store.document_text(sid + 1000) is None
