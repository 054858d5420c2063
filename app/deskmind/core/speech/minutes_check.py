"""Checking minutes against the transcript they summarise: nothing a model invents is kept.

A cited time is snapped to the start of the line it names, or dropped when it lies outside the
meeting; a quote that was never said is dropped; an item left with neither a real time nor real
words goes. :func:`ground` applies all of it to one part's minutes and counts what it changed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deskmind.core.speech.engine import Segment

if TYPE_CHECKING:
    from deskmind.core.speech.minutes import Minutes

log = logging.getLogger("deskmind.core.speech.minutes")

# A transcript line as the model is shown it: "[m:ss] speaker: words".
LINE = re.compile(r"^\[(\d+:\d{2}(?::\d{2})?)\]\s*(?:[\w .'-]{1,30}:\s*)?(.*)$", re.S)


class TranscriptTimes:
    """The start times of the transcript's lines, to check the times a model cites.

    Lines are shown to the model as ``[m:ss]`` (seconds cut, not rounded), so a cited time
    names the line whose start shows the same; any other time goes to the line being spoken
    then, or in a pause to the nearest line start. Times outside the transcript are dropped.
    """

    def __init__(self, segments: list[Segment]) -> None:
        self._segments = sorted(segments, key=lambda s: s.start)
        self._by_label: dict[int, float] = {}
        for seg in self._segments:
            self._by_label.setdefault(int(seg.start), seg.start)
        self._first = int(self._segments[0].start) if segments else 0
        self._last = max((s.end for s in segments), default=0.0)

    def snap(self, t: float) -> float | None:
        if not self._segments or t < self._first or t > self._last + 1.0:
            return None
        if int(t) in self._by_label:
            return self._by_label[int(t)]
        speaking = [s.start for s in self._segments if s.start <= t <= s.end]
        if speaking:
            return max(speaking)
        return min((s.start for s in self._segments), key=lambda start: abs(start - t))

    def check(self, m: Minutes) -> tuple[int, int]:
        """Snap every cited time of ``m`` in place; (times moved, times dropped)."""
        moved = dropped = 0
        for item in m.decisions + m.action_items + m.open_questions:
            kept = []
            for t in item.at:
                real = self.snap(t)
                if real is None:
                    dropped += 1
                    continue
                if int(real) != int(t):  # within the cited second is the same line
                    moved += 1
                kept.append(real)
            item.at = sorted(set(kept))
        return moved, dropped


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


class TranscriptQuotes:
    """Whether words were said in the meeting (case and punctuation aside), and in which line."""

    def __init__(self, segments: list[Segment]) -> None:
        self._lines = [(s.start, f" {_words(s.text)} ") for s in sorted(segments, key=lambda s: s.start)]
        self._all = " " + " ".join(w.strip() for _, w in self._lines) + " "

    def find(self, quote: str) -> tuple[bool, float | None]:
        """(said, start of the line that holds it; None when it runs over a line's end)."""
        q = _words(quote)
        if not q:
            return False, None
        q = f" {q} "
        for start, words in self._lines:
            if q in words:
                return True, start
        return q in self._all, None


LISTS = ("decisions", "action_items", "open_questions")


@dataclass
class Tally:
    moved: int = 0
    dropped: int = 0
    quotes: int = 0
    items: int = 0


def ground(m: Minutes, times: TranscriptTimes, quotes: TranscriptQuotes, tally: Tally) -> None:
    """Keep in ``m`` only what the transcript holds: cited times snapped to line starts or
    dropped, quotes never said dropped, and items left with no real time or quote dropped. An
    item written as a transcript line ("[0:34] others: ...") quotes that line: if the line was
    never said, the item goes."""
    moved, dropped = times.check(m)
    tally.moved += moved
    tally.dropped += dropped
    for name in LISTS:
        kept = []
        for item in getattr(m, name):
            as_line = LINE.match(item.text)
            if as_line and not item.quote:
                item.quote = as_line.group(2).strip() or None
            if item.quote:
                said, start = quotes.find(item.quote)
                if not said:
                    log.info("minutes: dropped a quote never said: %r", item.quote[:80])
                    tally.quotes += 1
                    item.quote = None
                    if as_line:
                        tally.items += 1
                        continue
                elif start is not None and start not in item.at:
                    item.at = sorted(set(item.at) | {start})
            if not item.at and not item.quote:
                log.info("minutes: dropped an item with no time or words from the transcript: %r",
                         item.text[:80])
                tally.items += 1
                continue
            kept.append(item)
        setattr(m, name, kept)
