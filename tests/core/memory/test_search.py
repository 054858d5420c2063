"""Hybrid search over a small real corpus: FTS5 + vectors fused by RRF, filters, provenance."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from deskmind.core.memory.search import RRF_K, HybridSearcher, SearchFilters, fts_query, rrf_fuse
from deskmind.core.memory.store import MemoryStore, text_hash

from tests.core.memory.helpers import note, scalar


def ts(y: int, m: int = 1, d: int = 1) -> float:
    return datetime(y, m, d, tzinfo=timezone.utc).timestamp()


CORPUS = [
    # (key, kind, privacy, date, collection, text)
    ("cat", "note", "public", ts(2020, 6, 1), None,
     "The cat curled up and dozed on the living room rug all afternoon."),
    ("invoice", "text", "secret", ts(2024, 3, 1), "bills",
     "Invoice number XQ7734 from the plumbing contractor is due at the end of March."),
    ("rust", "markdown", "personal", ts(2023, 1, 15), None,
     "Notes on compiling the Rust toolchain from source on Debian with cargo."),
    ("dog", "note", "private", ts(2024, 6, 1), None,
     "Our dog chases the neighbour's cat around the garden every morning."),
    ("board", "meeting", "public", ts(2022, 9, 9), None,
     "The board approved the budget for the new library wing after a long debate."),
    ("beans", "text", "private", ts(2021, 2, 2), "recipes",
     "Recipe: slow-cooked beans with smoked paprika, garlic and a little cat food? No, tomatoes."),
    ("train", "note", "personal", ts(2019, 5, 5), None,
     "The night train to Vienna leaves from platform nine at ten past eleven."),
    ("tax", "text", "secret", ts(2023, 4, 30), "bills",
     "Tax return filed; the refund should arrive within six weeks."),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, embedder):
    store = MemoryStore(tmp_path_factory.mktemp("search") / "memory.db")
    idx = store.ensure_active_index(embedder.model_id, embedder.dim)
    ids: dict[str, int] = {}
    texts = [c[5] for c in CORPUS]
    vecs = dict(zip(map(text_hash, texts), embedder.embed(texts)))
    for key, kind, privacy, when, coll, text in CORPUS:
        draft = note(text, kind=kind, privacy=privacy, mtime=when, collection=coll,
                     title=f"{key} title", uri=f"deskmind://{kind}/{key}")
        ids[key] = store.put_source(draft, idx, vecs)
    searcher = HybridSearcher(store, lambda _mid: embedder)
    yield store, searcher, ids
    store.close()


# -- the FTS query ---------------------------------------------------------------------------

def test_fts_query_keeps_only_content_words() -> None:
    assert fts_query("What is the capital of France?") == '"capital" OR "france"'
    assert fts_query("Tell me about the budget, please!!") == '"budget"'
    # Repeats collapse; case folds.
    assert fts_query("Budget budget BUDGET review") == '"budget" OR "review"'


def test_fts_query_strips_punctuation_and_operators() -> None:
    q = fts_query('NEAR(invoice plumbing) AND "XQ7734"* OR -tax col:value ^start')
    for bad in ("(", ")", "*", "^", ":", "-", " AND ", " NEAR"):
        assert bad not in q.replace(" OR ", " ")
    assert q == '"near" OR "invoice" OR "plumbing" OR "xq7734" OR "tax" OR "col" OR "value" OR "start"'


def test_fts_query_of_only_stopwords_or_punctuation() -> None:
    assert fts_query("?!...;") is None
    assert fts_query("") is None
    # A question made only of stopwords still searches something rather than nothing.
    assert fts_query("who are you") == '"who" OR "are" OR "you"'


@pytest.mark.parametrize("query", [
    "AND", "OR NOT", '"', "*", "(", ")", "col:xyz", "^start", "l'été", "C++", "—", "",
    'invoice" OR 1=1 --', "NEAR(a b, 3)", "\x00", "🐱 cat",
])
def test_any_text_is_a_valid_query(corpus, query: str) -> None:
    _store, searcher, _ids = corpus
    for mode in ("fts", "hybrid"):
        searcher.search(query, limit=5, mode=mode)  # must not raise (FTS5 syntax errors)


# -- both sides of the hybrid ---------------------------------------------------------------

def test_a_meaning_match_with_no_shared_word_is_found_by_the_vector_side(corpus) -> None:
    _store, searcher, ids = corpus
    query = "feline napping on a carpet"
    assert searcher.search(query, mode="fts").hits == []  # no keyword overlap at all
    hits = searcher.search(query, limit=3).hits
    assert hits[0].source_id == ids["cat"]
    assert hits[0].vector_rank == 1 and hits[0].fts_rank is None


def test_an_exact_rare_keyword_is_found_by_the_full_text_side(corpus) -> None:
    _store, searcher, ids = corpus
    fts_hits = searcher.search("XQ7734", mode="fts").hits
    assert [h.source_id for h in fts_hits] == [ids["invoice"]]
    top = searcher.search("XQ7734", limit=3).hits[0]
    assert top.source_id == ids["invoice"] and top.fts_rank == 1


def test_scores_are_reciprocal_rank_fusion(corpus) -> None:
    _store, searcher, ids = corpus
    hits = searcher.search("cat in the garden", limit=8).hits
    assert len(hits) == 8
    for h in hits:
        expected = sum(1.0 / (RRF_K + r) for r in (h.fts_rank, h.vector_rank) if r is not None)
        assert h.score == pytest.approx(expected, abs=1e-6)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # Found by both sides beats found by one.
    both = [h for h in hits if h.fts_rank and h.vector_rank]
    one = [h for h in hits if not (h.fts_rank and h.vector_rank)]
    assert both and one and min(h.score for h in both) > max(h.score for h in one)
    assert hits[0].source_id == ids["dog"]


def test_every_hit_carries_its_provenance(corpus) -> None:
    store, searcher, _ids = corpus
    conn = store.reader()
    hits = searcher.search("budget approved by the board", limit=8).hits
    assert hits
    for h in hits:
        assert isinstance(h.chunk_id, int) and isinstance(h.score, float) and h.score > 0
        assert h.source.startswith("deskmind://") and h.title.endswith(" title")
        assert isinstance(h.locator, dict) and "para" in h.locator
        uri, text = conn.execute(
            "SELECT s.uri, c.text FROM chunks c JOIN sources s ON s.id = c.source_id WHERE c.id = ?",
            (h.chunk_id,)).fetchone()
        assert (uri, text) == (h.source, h.text)


# -- filters ---------------------------------------------------------------------------------

FILTER_CASES = {
    "kind": (SearchFilters(kinds=["note"]), lambda r: r[1] == "note"),
    "two kinds": (SearchFilters(kinds=["text", "meeting"]), lambda r: r[1] in ("text", "meeting")),
    "privacy": (SearchFilters(privacy=["secret"]), lambda r: r[2] == "secret"),
    "since": (SearchFilters(since=ts(2023, 1, 1)), lambda r: r[3] >= ts(2023, 1, 1)),
    "until": (SearchFilters(until=ts(2021, 1, 1)), lambda r: r[3] < ts(2021, 1, 1)),
    "range": (SearchFilters(since=ts(2021, 1, 1), until=ts(2023, 6, 1)),
              lambda r: ts(2021, 1, 1) <= r[3] < ts(2023, 6, 1)),
    "collection": (SearchFilters(collection="bills"), lambda r: r[4] == "bills"),
}


@pytest.mark.parametrize("mode", ["hybrid", "fts", "vector"])
@pytest.mark.parametrize("case", sorted(FILTER_CASES))
def test_each_filter_keeps_only_matching_sources(corpus, case: str, mode: str) -> None:
    _store, searcher, _ids = corpus
    flt, ok = FILTER_CASES[case]
    by_key = {c[0]: c for c in CORPUS}
    key_of = {f"deskmind://{c[1]}/{c[0]}": c[0] for c in CORPUS}
    # Words from every document, so unfiltered full-text search reaches all of them.
    query = "cat invoice rust dog budget beans train tax"
    everything = searcher.search(query, limit=20, mode=mode).hits
    assert len({h.source for h in everything}) == len(CORPUS)
    hits = searcher.search(query, limit=20, filters=flt, mode=mode).hits
    expected = {k for k, row in by_key.items() if ok(row)}
    assert expected and expected != set(by_key)
    assert {key_of[h.source] for h in hits} == expected


def test_source_filter(corpus) -> None:
    _store, searcher, ids = corpus
    for mode in ("hybrid", "fts", "vector"):
        hits = searcher.search("cat", limit=10, mode=mode,
                               filters=SearchFilters(source_ids=[ids["dog"], ids["beans"]])).hits
        assert {h.source_id for h in hits} == {ids["dog"], ids["beans"]}


def test_filters_combine(corpus) -> None:
    _store, searcher, ids = corpus
    hits = searcher.search("cat", limit=10, filters=SearchFilters(
        kinds=["note"], privacy=["public", "private"], since=ts(2024, 1, 1))).hits
    assert {h.source_id for h in hits} == {ids["dog"]}


def test_limit_is_respected(corpus) -> None:
    _store, searcher, _ids = corpus
    assert len(searcher.search("cat", limit=1).hits) == 1
    assert len(searcher.search("cat", limit=3).hits) == 3


def test_full_text_only_when_there_are_no_vectors(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "plain.db") as store:
        store.put_source(note("the lighthouse keeper wrote in the logbook"))
        hits = HybridSearcher(store, None).search("lighthouse logbook").hits
        assert len(hits) == 1 and hits[0].fts_rank == 1 and hits[0].vector_rank is None
        assert scalar(store.reader(), "SELECT count(*) FROM vector_indexes") == 0


def test_rrf_fuse_adds_reciprocal_ranks_across_rankings():
    best = rrf_fuse(([1, 2, 3], [3, 1], []), 2)
    assert [cid for cid, _ in best] == [1, 3]  # 2 is only in one list, at rank 2
    assert best[0][1] == 1 / (RRF_K + 1) + 1 / (RRF_K + 2)
    assert best[1][1] == 1 / (RRF_K + 3) + 1 / (RRF_K + 1)
    assert rrf_fuse(([], []), 5) == []
