"""Split sections into chunks that fit the embedder (about 200 words), keeping locators.

Paragraphs stay whole where they fit; a long one is split at sentence ends, and a very long
sentence at word boundaries. Each chunk's locator is its section's locator plus the line range
it covers when the section knows its lines.

:func:`iter_chunks` yields chunks one at a time, working with offsets into the section's text:
it holds no list of paragraphs, sentences, words or chunks, so the memory it needs beside the
text is that of one chunk, however long the text (a 16 MB log with no blank line, a blob with
no spaces). No chunk is longer than ``MAX_CHUNK_CHARS``.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from deskmind.core.ingest.types import Section
from deskmind.core.memory.models import NewChunk

MAX_WORDS = 180
MIN_WORDS = 40
MAX_PRESPLIT_CHARS = 8000
# Text with few spaces (CJK, minified code, base64) still makes chunks of a bounded size.
MAX_CHUNK_CHARS = 8000
# Spans longer than this have their words counted by a scan that stops early, not by split().
_SPLIT_CHARS = 1 << 16

_PARA = re.compile(r"\n[ \t]*\n+")
_SENT = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\S+")

Span = tuple[int, int, int]  # start, end (offsets into the text), words


def _count_words(text: str, start: int, end: int) -> int:
    """Words in ``text[start:end]``; above MAX_WORDS the count may stop at MAX_WORDS + 1."""
    if end - start <= _SPLIT_CHARS:
        return len(text[start:end].split())
    n = 0
    for _ in _WORD.finditer(text, start, end):
        n += 1
        if n > MAX_WORDS:
            break
    return n


def _then_none(matches: Iterator[re.Match[str]]) -> Iterator[re.Match[str] | None]:
    """The matches, lazily, then None (the end of the span)."""
    yield from matches
    yield None


def _pieces(text: str) -> Iterator[Span]:
    """Paragraphs, with long ones cut into sentence/word runs."""
    pos = 0
    for m in _then_none(_PARA.finditer(text)):
        end = m.start() if m else len(text)
        n = _count_words(text, pos, end)
        if n:
            if n <= MAX_WORDS and end - pos <= MAX_CHUNK_CHARS:
                yield pos, end, n
            else:
                yield from _split_long(text, pos, end)
        if m is None:
            break
        pos = m.end()


def _split_long(text: str, base: int, stop: int) -> Iterator[Span]:
    """Runs of whole sentences of ``text[base:stop]``."""
    start = buf_start = base
    buf_words = 0
    for m in _then_none(_SENT.finditer(text, base, stop)):
        end = m.start() if m else stop
        words = _count_words(text, start, end)
        if buf_words and (buf_words + words > MAX_WORDS or end - buf_start > MAX_CHUNK_CHARS):
            yield buf_start, start, buf_words
            buf_start, buf_words = start, 0
        if words > MAX_WORDS or end - start > MAX_CHUNK_CHARS:
            # one enormous sentence (or no punctuation at all)
            yield from _split_words(text, start, end)
            buf_start, buf_words = (m.end() if m else stop), 0
        else:
            buf_words += words
        if m is None:
            break
        start = m.end()
    if buf_words:
        yield buf_start, stop, buf_words


def _split_words(text: str, start: int, end: int) -> Iterator[Span]:
    """Runs of MAX_WORDS words; a "word" longer than a chunk is cut by characters."""
    first = last = start
    n = 0
    for m in _WORD.finditer(text, start, end):
        a, b = m.span()
        if n and (n == MAX_WORDS or b - first > MAX_CHUNK_CHARS):
            yield first, last, n
            n = 0
        if b - a > MAX_CHUNK_CHARS:
            for cut in range(a, b, MAX_CHUNK_CHARS):
                yield cut, min(cut + MAX_CHUNK_CHARS, b), 1
            continue
        if n == 0:
            first = a
        last = b
        n += 1
    if n:
        yield first, last, n


class _LineCounter:
    """Newlines before an offset, counted incrementally: chunks come in order, and counting
    from the start each time made a 5 MB changelog cost minutes (quadratic)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.count = 0

    def newlines_before(self, offset: int) -> int:
        if offset < self.pos:
            self.pos, self.count = 0, 0
        self.count += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.count


def chunk_sections(sections: list[Section], presplit: bool = False) -> list[NewChunk]:
    """Every chunk of the sections, in a list (small documents; see :func:`iter_chunks`)."""
    return list(iter_chunks(sections, presplit))


def iter_chunks(sections: Iterable[Section], presplit: bool = False) -> Iterator[NewChunk]:
    """The chunks of the sections, in order, one at a time."""
    for sec in sections:
        if not sec.text.strip():
            continue
        # Presplit sections are chunk-sized by design; a pathological one (minified code on one
        # line, a transcript turn with no pauses) is still cut by words below.
        if presplit and len(sec.text) <= MAX_PRESPLIT_CHARS:
            loc = dict(sec.locator)
            if sec.line_start is not None and "line_start" not in loc:
                loc["line_start"] = sec.line_start
                loc["line_end"] = sec.line_start + sec.text.count("\n")
            yield NewChunk(text=sec.text.strip(), locator=loc)
            continue
        lines = _LineCounter(sec.text)
        buf_start = buf_end = -1
        words = 0
        for start, end, n in _pieces(sec.text):
            if words and (words + n > MAX_WORDS or end - buf_start > MAX_CHUNK_CHARS):
                yield _chunk_of(sec, buf_start, buf_end, lines)
                words = 0
            if not words:
                buf_start = start
            buf_end = end
            words += n
        if words:
            yield _chunk_of(sec, buf_start, buf_end, lines)


def _chunk_of(sec: Section, start: int, end: int, lines: _LineCounter) -> NewChunk:
    """The chunk of ``sec.text[start:end]``, stripped, with its line range."""
    seg = sec.text[start:end]
    loc = dict(sec.locator)
    if sec.line_start is not None and "line_start" not in sec.locator:
        s = start + len(seg) - len(seg.lstrip())
        e = start + len(seg.rstrip())
        loc["line_start"] = sec.line_start + lines.newlines_before(s)
        loc["line_end"] = sec.line_start + lines.newlines_before(e)
    return NewChunk(text=seg.strip(), locator=loc)
