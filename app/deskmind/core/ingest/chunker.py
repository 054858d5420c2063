"""Split sections into chunks that fit the embedder (about 200 words), keeping locators.

Paragraphs stay whole where they fit; a long one is split at sentence ends, and a very long
sentence at word boundaries. Each chunk's locator is its section's locator plus the line range
it covers when the section knows its lines.
"""

from __future__ import annotations

import re
from typing import Iterable

from deskmind.core.ingest.types import Section
from deskmind.core.memory.models import NewChunk

MAX_WORDS = 180
MIN_WORDS = 40
MAX_PRESPLIT_CHARS = 8000

_PARA = re.compile(r"\n[ \t]*\n+")
_SENT = re.compile(r"(?<=[.!?])\s+")


def _pieces(text: str) -> Iterable[tuple[int, str]]:
    """(offset, paragraph) pairs, with long paragraphs cut into sentence/word runs."""
    pos = 0
    for m in list(_PARA.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        para = text[pos:end]
        if para.strip():
            if len(para.split()) <= MAX_WORDS:
                yield pos, para
            else:
                yield from _split_long(pos, para)
        if m is None:
            break
        pos = m.end()


def _split_long(base: int, para: str) -> Iterable[tuple[int, str]]:
    start = 0
    buf_start, buf_words = 0, 0
    for m in list(_SENT.finditer(para)) + [None]:
        end = m.start() if m else len(para)
        words = len(para[start:end].split())
        if buf_words and buf_words + words > MAX_WORDS:
            yield base + buf_start, para[buf_start:start]
            buf_start, buf_words = start, 0
        if words > MAX_WORDS:  # one enormous sentence (or no punctuation at all)
            for off, piece in _split_words(para[start:end]):
                yield base + start + off, piece
            buf_start, buf_words = (m.end() if m else len(para)), 0
        else:
            buf_words += words
        if m is None:
            break
        start = m.end()
    if buf_words:
        yield base + buf_start, para[buf_start:]


def _split_words(text: str) -> Iterable[tuple[int, str]]:
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    for i in range(0, len(spans), MAX_WORDS):
        group = spans[i:i + MAX_WORDS]
        yield group[0][0], text[group[0][0]:group[-1][1]]


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
    chunks: list[NewChunk] = []
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
            chunks.append(NewChunk(text=sec.text.strip(), locator=loc))
            continue
        buf: list[tuple[int, str]] = []
        words = 0
        lines = _LineCounter(sec.text)

        def flush() -> None:
            if not buf:
                return
            start = buf[0][0]
            seg = sec.text[start:buf[-1][0] + len(buf[-1][1])]
            text = seg.strip()
            loc = dict(sec.locator)
            if sec.line_start is not None and "line_start" not in sec.locator:
                s = start + len(seg) - len(seg.lstrip())
                e = start + len(seg.rstrip())
                loc["line_start"] = sec.line_start + lines.newlines_before(s)
                loc["line_end"] = sec.line_start + lines.newlines_before(e)
            chunks.append(NewChunk(text=text, locator=loc))

        for off, piece in _pieces(sec.text):
            n = len(piece.split())
            if buf and words + n > MAX_WORDS:
                flush()
                buf, words = [], 0
            buf.append((off, piece))
            words += n
        flush()
    return chunks
