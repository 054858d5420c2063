"""Full text on PostgreSQL, kept cheap on big memories: rank only as many matches as a budget
allows (the policy of the SQLite backend's :mod:`deskmind.core.memory.fts_budget`).

Ranking reads and scores every chunk that matches any OR-ed word, so one common word makes a
question cost tens of milliseconds at 10k chunks and far more beyond, while adding almost
nothing to the ranking. The words of a question are taken rarest first while the total number
of their matches stays within :data:`BUDGET`; only chunks holding one of those are ranked, over
all the words. When even the rarest word matches more, only its newest matches are ranked (at
most :data:`BUDGET`, found in a range of the newest ids sized to hold about that many). Document frequencies come from the column statistics ANALYZE keeps (autovacuum
refreshes them) and are cached per store: they move slowly, and a stale share only shifts the
budget a little.

The score is ``ts_rank`` (how often the words occur, weighed down by the chunk's length, as
BM25 does), not ``ts_rank_cd``: cover density looks for the shortest spans holding the words
and cost ~3.4 us a matching chunk against ~0.5 for ``ts_rank`` (10k chunks, a question of
four words matching 1,461 of them: 5.0 ms against 0.76, best of 25), which made full text
the larger part of a hybrid search.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from deskmind.core.memory.pg.migrations import TS_CONFIG
from deskmind.core.memory.search import MAX_FTS_TERMS, SearchFilters, content_words

BUDGET = 2_000
# The id range of an over-budget word holds about this many times BUDGET of its matches (when
# its matches are spread evenly over the ids in use). At 100k chunks, 1.5
# cost 12 ms of server CPU for a word in 4.7% of chunks, 1.0 cost 7.5 (mostly reading rows).
WINDOW_SLACK = 1.0
# Normalisation 1: the rank divided by 1 + log(the chunk's length in words).
RANK = "ts_rank({tsv}, q, 1)"
# A cached frequency is counted again after this long (other machines add chunks too).
FREQ_TTL_S = 600.0


def question_words(text: str) -> list[str]:
    """The content words of ``text`` in order, no repeats; a question made only of stopwords
    still searches its first few words (as the SQLite backend does)."""
    words = list(dict.fromkeys(content_words(text)))
    if not words:
        words = list(dict.fromkeys(w for w in (x.lower() for x in text.split())
                                   if len(w) > 1 and w.isalnum()))[:4]
    return words[:MAX_FTS_TERMS]


def or_query(words: list[str]) -> str:
    """``websearch_to_tsquery`` text OR-ing ``words`` (content words hold only word characters,
    so nothing a person types can be a syntax error)."""
    return " or ".join(words)


class TermFrequencies:
    """About how many chunks hold each word, from the statistics PostgreSQL's ANALYZE keeps on
    the tsvector column (its most common lexemes and their frequencies): no count per question.
    A word missing from them is rarer than every listed one. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stems: dict[str, list[str]] = {}  # word -> its lexemes (the config never changes)
        self._common: dict[str, float] = {}  # lexeme -> share of chunks holding it
        self._rare = 0.0  # share below which lexemes are not listed
        self._chunks = 0.0
        self._read_at = float("-inf")

    def of(self, tx: Any, words: list[str]) -> dict[str, int]:
        self._refresh(tx)
        with self._lock:
            missing = [w for w in words if w not in self._stems]
        if missing:
            rows = tx.execute(
                f"SELECT w, array(SELECT lexeme FROM unnest(to_tsvector('{TS_CONFIG}', w))) "
                "FROM unnest(?::text[]) AS w", (missing,)).fetchall()
            with self._lock:
                self._stems.update({w: list(lex) for w, lex in rows})
        with self._lock:
            out = {}
            for w in words:
                lexemes = self._stems.get(w) or []
                if lexemes:  # a stopword has none: it matches nothing
                    share = max(self._common.get(x, self._rare) for x in lexemes)
                    out[w] = max(1, int(share * self._chunks))
                else:
                    out[w] = 0
            return out

    def _refresh(self, tx: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._read_at < FREQ_TTL_S:
                return
        chunks = tx.execute(
            "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'chunks'::regclass").fetchone()[0]
        rows = tx.execute(
            "SELECT e.lexeme, s.most_common_elem_freqs[e.i] FROM pg_stats s, "
            "unnest(s.most_common_elems::text::text[]) WITH ORDINALITY AS e(lexeme, i) "
            "WHERE s.schemaname = current_schema() AND s.tablename = 'chunks' "
            "AND s.attname = 'tsv'").fetchall()
        with self._lock:
            self._common = {lex: float(f) for lex, f in rows}
            # Unlisted lexemes are rarer than the rarest listed one; with no statistics yet
            # (a small or new memory) every word counts as rare and all are ranked.
            self._rare = min(self._common.values(), default=0.0) / 2
            self._chunks = float(chunks)
            self._read_at = now


def ranked_chunks(tx: Any, freqs: TermFrequencies, query: str, depth: int,
                  filters: SearchFilters) -> list[int]:
    """Chunk ids best first for ``query``'s words (at most ``depth``)."""
    part = ranked_sql(tx, freqs, query, depth, filters)
    if part is None:
        return []
    sql, args = part
    return [r[0] for r in tx.execute(sql, args).fetchall()]


def ranked_sql(tx: Any, freqs: TermFrequencies, query: str, depth: int,
               filters: SearchFilters) -> tuple[str, list[Any]] | None:
    """A statement (and its arguments) selecting the chunk ids of :func:`ranked_chunks`, best
    first, to run alone or inside a larger statement; None when nothing can match."""
    words = question_words(query)
    if not words:
        return None
    rank_q = f"websearch_to_tsquery('{TS_CONFIG}', ?)"
    if not filters.is_empty():
        # A filter narrows the matches already: rank all that pass it.
        where, args = filters.sql("s")
        return (f"SELECT c.id FROM chunks c JOIN sources s ON s.id = c.source_id, {rank_q} q "
                f"WHERE c.tsv @@ q AND {where} ORDER BY {RANK.format(tsv='c.tsv')} DESC, c.id LIMIT ?",
                [or_query(words), *args, depth])
    df = freqs.of(tx, words)
    found = sorted((w for w in words if df.get(w, 0) > 0), key=lambda w: df[w])
    if not found:
        return None
    kept, total = [], 0
    for w in found:
        if kept and total + df[w] > BUDGET:
            break
        kept.append(w)
        total += df[w]
    window, args = "", [or_query(kept)]
    if total > BUDGET:
        # Only the newest matches: ids above a floor sized to hold about BUDGET of them, so the
        # GIN bitmap is ANDed with an id range and only those rows are read; ordering every
        # match by id read them all (37 ms of server CPU against 7.5 for the word above).
        # The range is a share of the ids in use (first to last), not of the count of chunks:
        # replaced sources leave gaps, and a range sized by the count then held too few.
        window = ("AND c.id > (SELECT max(id) - ceil((max(id) - min(id) + 1) * ?::float8) FROM chunks) "
                  f"ORDER BY c.id DESC LIMIT {BUDGET}")
        args.append(BUDGET / total * WINDOW_SLACK)
    return (f"SELECT m.id FROM (SELECT c.id, c.tsv FROM chunks c "
            f"WHERE c.tsv @@ websearch_to_tsquery('{TS_CONFIG}', ?) {window}) m, {rank_q} q "
            f"ORDER BY {RANK.format(tsv='m.tsv')} DESC, m.id LIMIT ?",
            [*args, or_query(words), depth])
