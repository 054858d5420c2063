"""Keep FTS5 ranking cheap on big memories: rank only as many matches as a budget allows.

``ORDER BY rank`` scores every row that matches any OR-ed word (~1.7 us a row here), so one
word that appears in half the chunks costs ~8 ms at 10k chunks, 85 ms at 100k and close to a
second at 1M, while finding the matches alone is ~10x cheaper. Such a word also adds almost
nothing to BM25 (its IDF is near zero). So the words of a question are taken rarest first while
the total number of their matches stays within :data:`BUDGET`; only chunks holding one of those
are ranked, by BM25 over all the words (``kept AND (all words)``). When even the rarest word
matches more, only the newest chunks that contain it are ranked (a window of rowids sized to
hold about :data:`BUDGET` of its matches). At 100k synthetic chunks: FTS p50 50 ms -> 4 ms.

Document frequencies come from an ``fts5vocab`` table over ``chunks_fts`` after the words are
stemmed with the same tokenizer (a one-row FTS5 table in the connection's temp schema), and are
cached per database: they move slowly, and a stale count only shifts the budget a little.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

log = logging.getLogger(__name__)

BUDGET = 2_000
TOKENIZER = "porter unicode61 remove_diacritics 2"  # the one chunks_fts uses
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')


class _Frequencies:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.df: dict[str, tuple[int, int]] = {}  # stem -> (documents, corpus size then)


_STEMS: dict[str, list[str]] = {}  # word -> its tokens (the tokenizer never changes)


_BY_DB: dict[str, _Frequencies] = {}
_BY_DB_LOCK = threading.Lock()


def _freqs(conn: Any) -> _Frequencies:
    name = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "") or ""
    with _BY_DB_LOCK:
        return _BY_DB.setdefault(name or f"conn-{id(conn)}", _Frequencies())


def _prepare(conn: Any) -> None:
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.deskmind_qtok "
        f"USING fts5(w, tokenize='{TOKENIZER}')")
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.deskmind_qtok_v "
        "USING fts5vocab(temp, deskmind_qtok, 'instance')")
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.deskmind_vocab "
        "USING fts5vocab(main, chunks_fts, 'row')")


def _stems(conn: Any, words: list[str]) -> list[list[str]]:
    """The tokens FTS5 makes of each word (usually one stem)."""
    todo = [w for w in dict.fromkeys(words) if w not in _STEMS]
    if todo:
        _prepare(conn)
        conn.execute("DELETE FROM temp.deskmind_qtok")
        conn.executemany("INSERT INTO temp.deskmind_qtok(rowid, w) VALUES (?, ?)",
                         [(i + 1, w) for i, w in enumerate(todo)])
        found: list[list[str]] = [[] for _ in todo]
        for term, doc in conn.execute("SELECT term, doc FROM temp.deskmind_qtok_v"):
            found[doc - 1].append(term)
        if len(_STEMS) > 50_000:
            _STEMS.clear()
        _STEMS.update(zip(todo, found))
    return [_STEMS.get(w, []) for w in words]


def plan(conn: Any, match: str, budget: int = BUDGET) -> tuple[str, int | None]:
    """The MATCH expression to rank, and the lowest rowid worth ranking (None: all).

    ``match`` is an OR of quoted words as made by :func:`search.fts_query`.
    """
    words = [w.replace('""', '"') for w in _QUOTED.findall(match)]
    if not words:
        return match, None
    try:
        stems = _stems(conn, words)
        size = conn.execute("SELECT coalesce(max(rowid), 0) FROM chunks").fetchone()[0]
        freqs = _freqs(conn)
        df: list[int] = []
        for toks in stems:
            worst = 0
            for t in toks:
                with freqs.lock:
                    hit = freqs.df.get(t)
                if hit is None or size > hit[1] * 1.25 or size < hit[1] * 0.8:
                    _prepare(conn)
                    row = conn.execute(
                        "SELECT doc FROM temp.deskmind_vocab WHERE term = ?", (t,)).fetchone()
                    hit = (row[0] if row else 0, size)
                    with freqs.lock:
                        if len(freqs.df) > 50_000:
                            freqs.df.clear()
                        freqs.df[t] = hit
                worst = max(worst, hit[0])
            df.append(worst)
    except Exception as exc:  # never let the optimisation break search
        log.debug("FTS planning skipped: %s", exc)
        return match, None
    order = sorted(range(len(words)), key=lambda i: df[i])
    keep, total = [], 0
    for i in order:
        if keep and total + df[i] > budget:
            break
        keep.append(i)
        total += df[i]
    quote = lambda i: '"' + words[i].replace('"', '""') + '"'  # noqa: E731
    expr = " OR ".join(quote(i) for i in sorted(keep))
    if len(keep) < len(words):
        # Match only chunks with a kept word, but let BM25 still reward the dropped (common)
        # words where they occur: ``kept AND (every word)``. Seeking through a long doclist
        # for an AND is cheap next to ranking it.
        expr = f"({expr}) AND ({' OR '.join(quote(i) for i in range(len(words)))})"
    if total <= budget or size == 0:
        return expr, None
    # Even the rarest word is everywhere: rank the newest chunks holding ~budget of its matches,
    # a share of the rowids in use (forgotten sources leave the low ones empty).
    try:
        first = conn.execute("SELECT coalesce(min(rowid), 1) FROM chunks").fetchone()[0]
    except Exception as exc:  # never let the optimisation break search
        log.debug("FTS planning skipped: %s", exc)
        return match, None
    window = max(1, int((size - first + 1) * budget / total))
    return expr, max(0, size - window)
