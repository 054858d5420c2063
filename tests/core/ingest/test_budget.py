"""The budget per file, limit by limit, on the extractors themselves (in this process)."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import pytest

from deskmind.core.config.sections import ExtractionSettings
from deskmind.core.errors import UserInputError
from deskmind.core.ingest.budget import MB, Budget, BudgetExceeded, run_metered
from deskmind.core.ingest.extractors import builtin_file_types
from deskmind.core.ingest.extractors.htmlpage import extract_html
from deskmind.core.ingest.extractors.office import extract_docx
from deskmind.core.ingest.extractors.pdf import extract_pdf
from deskmind.core.ingest.types import DamagedFile, Extracted, Section
from tests.core.ingest.conftest import make_pdf
from tests.core.ingest.hostile_files import big_docx, nested_divs, own_stream_pdf, shared_stream_pdf


def _gunzip():
    return builtin_file_types().lookup(Path("notes.txt.gz")).extractor


def test_gzip_keeps_the_first_text_and_counts_the_rest() -> None:
    text = "".join(f"line {i}: café ünïcode\n" for i in range(40_000)).encode()
    ex = run_metered(_gunzip(), Path("notes.txt.gz"), gzip.compress(text), Budget(max_text_chars=100_000))
    assert ex.text.startswith("line 0: café") and len(ex.text.encode()) <= 100_000
    assert ex.left_out == [f"kept the first 0.095 MB of text of {len(text) / MB:.1f} MB "
                           "(text budget per file: 0.095 MB; Settings → Indexing)"]
    assert ex.extractor == "gzip+text"


def test_gzip_past_the_inflate_budget_stops_inflating() -> None:
    text = b"the heron waits by the weir\n" * 400_000  # 11 MB
    data = gzip.compress(text)
    t0 = time.perf_counter()
    ex = run_metered(_gunzip(), Path("log.txt.gz"), data, Budget(max_inflated_bytes=2 * MB, max_text_chars=MB // 2))
    assert time.perf_counter() - t0 < 5
    assert ex.left_out == ["kept the first 0.5 MB of text; it inflates past 2.0 MB, where reading stopped "
                           "(inflate budget per file: 2.0 MB; text budget per file: 0.5 MB; Settings → Indexing)"]
    zeros = gzip.compress(b"\0" * (8 * MB))
    with pytest.raises(BudgetExceeded, match=r"refused: inflates past 1.0 MB \(inflate budget per file: 1.0 MB"):
        run_metered(_gunzip(), Path("bomb.txt.gz"), zeros, Budget(max_inflated_bytes=MB, max_text_chars=0))


def test_gzip_members_and_damage() -> None:
    two = gzip.compress(b"first member about otters\n") + gzip.compress(b"second member about voles\n")
    ex = run_metered(_gunzip(), Path("a.txt.gz"), two, Budget())
    assert "otters" in ex.text and "voles" in ex.text and not ex.left_out
    whole = gzip.compress(b"some text that will be cut off " * 1000)
    with pytest.raises(DamagedFile, match="corrupt gzip file: it ends before its data does"):
        run_metered(_gunzip(), Path("a.txt.gz"), whole[: len(whole) // 2], Budget())
    with pytest.raises(DamagedFile, match="corrupt gzip file"):
        run_metered(_gunzip(), Path("a.txt.gz"), b"\x1f\x8b\x08\x00garbage-not-deflate", Budget())


def test_text_budget_cuts_sections_and_says_how_much() -> None:
    def three(path: Path, data: bytes) -> Extracted:
        secs = [Section("a" * 600_000, {"page": 1}), Section("b" * 600_000, {"page": 2}), Section("c" * 10, {"page": 3})]
        return Extracted("t", "\n\n".join(s.text for s in secs), secs, "probe")

    ex = run_metered(three, Path("x"), b"", Budget(max_text_chars=MB))
    assert [s.locator["page"] for s in ex.sections] == [1, 2]
    assert sum(len(s.text) for s in ex.sections) == MB
    assert ex.left_out == ["kept the first 1.0 MB of text of 1.1 MB (text budget per file: 1.0 MB; "
                           "Settings → Indexing)"]


def test_a_two_thousand_page_book_passes_the_default_budget() -> None:
    pages = [f"Chapter page {n}. The river keeps its course through the valley of stones." for n in range(2000)]
    t0 = time.perf_counter()
    ex = run_metered(extract_pdf, Path("book.pdf"), make_pdf(pages), Budget())
    assert len(ex.sections) == 2000 and ex.left_out == []
    assert ex.sections[-1].locator == {"page": 2000}
    assert time.perf_counter() - t0 < Budget().max_seconds


def test_a_two_thousand_page_book_of_full_pages_passes_the_default_budget() -> None:
    data = own_stream_pdf(pages=2000, lines=60)  # 60 lines, ~2,000 characters a page: 4 MB of text
    t0 = time.perf_counter()
    ex = run_metered(extract_pdf, Path("book.pdf"), data, Budget())
    took = time.perf_counter() - t0
    assert len(ex.sections) == 2000 and ex.left_out == []
    assert ex.sections[-1].text.endswith("line 59 of page 2000 about otters")
    # 29 s here with a load average of 25 on 2 cores: well within the budget.
    assert took < Budget().max_seconds, took


def test_pdf_stops_at_the_inflate_and_time_budgets() -> None:
    data = shared_stream_pdf(pages=4000, lines=200)  # ~9 kB of content per page, shared
    ex = run_metered(extract_pdf, Path("s.pdf"), data, Budget(max_inflated_bytes=MB))
    assert len(ex.sections) < 200
    assert ex.left_out == [f"stopped at page {len(ex.sections) + 1} of 4,000: its pages' content streams come "
                           "to more than 1.0 MB (inflate budget per file: 1.0 MB; Settings → Indexing)"]
    slow = own_stream_pdf(pages=400, lines=500)  # ~25 ms a page (~0.5 s on a very busy machine)
    t0 = time.perf_counter()
    ex = run_metered(extract_pdf, Path("s.pdf"), slow, Budget(max_seconds=2))
    took = time.perf_counter() - t0
    assert 0 < len(ex.sections) < 400
    # It stops at the first page boundary past the budget, and says how long it really took.
    assert took < 2 + 4, took
    said = re.fullmatch(rf"stopped at page {len(ex.sections) + 1} of 400 after (\d+) s "
                        r"\(time budget per file: 2 s; Settings → Indexing\)", ex.left_out[0])
    assert said and 2 <= int(said[1]) <= round(took), (ex.left_out, took)


def test_a_4000_page_pdf_of_one_shared_stream_stops_at_the_text_budget_in_seconds() -> None:
    data = shared_stream_pdf(pages=4000, lines=2000)  # 0.6 MB; 65 kB of text a page, 260 MB in all
    assert len(data) < MB
    t0 = time.perf_counter()
    ex = run_metered(extract_pdf, Path("shared.pdf"), data, Budget())
    took = time.perf_counter() - t0
    kept = sum(len(s.text) for s in ex.sections)
    assert kept == 16 * MB
    n = ex.sections[-1].locator["page"]
    assert 200 < n < 300 and [s.locator["page"] for s in ex.sections] == list(range(1, n + 1))
    assert ex.left_out == [f"kept the first 16 MB of text, from pages 1 to {n} of 4,000 "
                           "(text budget per file: 16 MB; Settings → Indexing)"]
    assert ex.sections[0].text == ex.sections[1].text and "line 1999 of page 1" in ex.sections[0].text
    # Before: parsed page after page, over 200 s and gigabytes; the stream is now parsed once.
    assert took < 20, took


def test_pdf_page_budget_keeps_the_first_pages() -> None:
    ex = run_metered(extract_pdf, Path("p.pdf"), own_stream_pdf(pages=700, lines=1), Budget(max_pages=500))
    assert [s.locator["page"] for s in ex.sections] == list(range(1, 501))
    assert ex.sections[-1].text == "line 0 of page 500 about otters"
    assert ex.left_out == ["kept the first 500 pages of 700 (page budget per file: 500; Settings → Indexing)"]


def test_html_nested_a_million_deep_is_linear() -> None:
    t0 = time.perf_counter()
    small = run_metered(extract_html, Path("a.html"), nested_divs(20_000), Budget())
    t_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    big = run_metered(extract_html, Path("b.html"), nested_divs(200_000), Budget())
    t_big = time.perf_counter() - t0
    assert big.title == "Deep" and big.text.endswith("the last paragraph")
    assert small.text.count("x") == 20_000 and big.text.count("x") == 200_000
    # ten times the tags in about ten times the time (quadratic would be a hundred)
    assert t_big < 30 * max(t_small, 0.05), (t_small, t_big)


def test_html_time_budget_keeps_what_was_read() -> None:
    ex = run_metered(extract_html, Path("b.html"), nested_divs(2_000_000), Budget(max_seconds=1))
    assert ex.left_out[0].startswith("kept the text of the first ") and "(time budget per file: 1 s" in ex.left_out[0]
    assert 0 < ex.text.count("x") < 2_000_000


def test_docx_document_xml_is_streamed_within_the_inflate_budget() -> None:
    data = big_docx(document_mb=24)
    ex = run_metered(extract_docx, Path("big.docx"), data, Budget(max_inflated_bytes=8 * MB))
    assert ex.left_out == ["stopped reading word/document.xml after inflating 8.0 MB "
                           "(inflate budget per file: 8.0 MB; Settings → Indexing)"]
    assert ex.text.startswith("word0") and "word1000" in ex.text


def test_extraction_settings_are_checked() -> None:
    ExtractionSettings().validate()
    b = Budget.from_settings(ExtractionSettings(max_text_mb=2, max_pages=10, max_seconds=5, max_inflated_mb=64))
    assert (b.max_text_chars, b.max_pages, b.max_seconds, b.max_inflated_bytes) == (2 * MB, 10, 5.0, 64 * MB)
    with pytest.raises(UserInputError, match=r"\[extraction\] max_pages must be at least 1, not 0"):
        ExtractionSettings(max_pages=0).validate()
    with pytest.raises(UserInputError, match=r"\[extraction\] parser_memory_mb must be at least 256"):
        ExtractionSettings(parser_memory_mb=64).validate()
    with pytest.raises(UserInputError, match=r"\[extraction\] max_seconds must be at least 1, not nan"):
        ExtractionSettings(max_seconds=float("nan")).validate()
