"""A file a limit cut short or refused is read again, though unchanged, once the limit changes
(Settings → Indexing), and only then."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from deskmind.core.ingest.budget import MB, Budget, read_under_other_limits
from deskmind.core.ingest.indexer import Indexer
from tests.core.ingest.conftest import chunks_of, source_row

pytestmark = pytest.mark.usefixtures("on_both_backends")


def outcome(ix: Indexer, path: Path):
    [o] = [o for o in ix.index([path.parent]).outcomes if o.path == str(path)]
    return o


def test_a_text_cut_by_the_budget_is_read_whole_once_the_budget_is_raised(store, tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("".join(f"Chapter {i}: the heron waits by the weir.\n\n" for i in range(4000)))
    small = Indexer(store, None, transcriber=None, budget=Budget(max_text_chars=20_000), parser_memory_mb=None)
    first = outcome(small, book)
    assert first.status == "indexed" and "text budget per file: 0.019 MB" in first.reason, first.reason
    cut = "".join(t for t, _ in chunks_of(store, book))
    assert "Chapter 3999" not in cut

    assert outcome(small, book).status == "unchanged"          # the same limit: nothing read

    big = Indexer(store, None, transcriber=None, budget=Budget(max_text_chars=MB), parser_memory_mb=None)
    again = outcome(big, book)
    assert again.status == "indexed" and again.reason is None, again
    whole = "".join(t for t, _ in chunks_of(store, book))
    assert "Chapter 3999" in whole
    assert "left_out" not in source_row(store, book)["metadata"]
    assert outcome(big, book).status == "unchanged"            # read whole: the budget no longer matters


def test_a_file_the_budget_refused_is_tried_again_under_a_raised_budget_only(store, tmp_path: Path) -> None:
    log = tmp_path / "log.txt.gz"
    log.write_bytes(gzip.compress(b" " * (3 * MB) + b"the otter came back at dusk\n"))   # blank, then text
    tight = Indexer(store, None, transcriber=None, budget=Budget(max_inflated_bytes=MB), parser_memory_mb=None)
    first = outcome(tight, log)
    assert first.status == "failed" and "inflate budget per file: 1.0 MB" in first.reason, first.reason
    assert outcome(tight, log).status == "unchanged"
    # another limit changed, not the one that refused it: still nothing to read
    other = Indexer(store, None, transcriber=None, budget=Budget(max_inflated_bytes=MB, max_pages=10),
                    parser_memory_mb=None)
    assert outcome(other, log).status == "unchanged"
    roomy = Indexer(store, None, transcriber=None, budget=Budget(max_inflated_bytes=8 * MB), parser_memory_mb=None)
    assert outcome(roomy, log).status == "indexed"
    assert any("otter" in t for t, _ in chunks_of(store, log))
    assert source_row(store, log)["status"] == "indexed"


def test_which_notes_mean_another_limit() -> None:
    b = Budget(max_text_chars=16 * MB)
    said = "kept the first 16 MB of text of 250 MB (text budget per file: 16 MB; Settings → Indexing)"
    assert not read_under_other_limits(said, b, 1024)
    assert read_under_other_limits(said, Budget(max_text_chars=32 * MB), 1024)
    assert not read_under_other_limits(None, b, 1024)
    assert not read_under_other_limits("corrupt gzip file: it ends before its data does", b, 1024)
    killed = ("the parser was killed (SIGKILL), most likely for memory: memory limit per parser: "
              "1,024 MB")
    assert not read_under_other_limits(killed, b, 1024)
    assert read_under_other_limits(killed, b, 2048)
    assert read_under_other_limits(killed, b, None)            # parser processes switched off
