"""A stop for runaway repetition in a streamed answer.

Small models, once they repeat a phrase, tend to repeat it until the token cap: the cap alone
would still show the person a wall of the same line. The guard watches the stream as it comes
and reports the moment a run of words or a line comes round for the third time; the answer is
then cut where the repetition began (its second occurrence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NGRAM = 6          # a run of this many words...
TIMES = 3          # ...seen this many times is runaway repetition
MIN_LINE_CHARS = 3

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class RepetitionGuard:
    """Feed it the answer as it streams; ``cut`` is set once the stream started repeating."""

    ngram: int = NGRAM
    times: int = TIMES
    text: str = ""
    cut: int | None = None      # where the answer should end: the start of the second occurrence
    repeated: str = ""          # what came round again
    _scanned: int = 0
    _words: list[tuple[str, int]] = field(default_factory=list)
    _grams: dict[tuple[str, ...], list[tuple[int, int]]] = field(default_factory=dict)
    _lines: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _line_start: int = 0

    def feed(self, piece: str) -> bool:
        """Add streamed text; True when the stream has started to repeat itself."""
        if self.cut is not None:
            return True
        self.text += piece
        # Only complete words and lines: the last word may still be growing.
        end = len(self.text)
        while end > self._scanned and self.text[end - 1].isalnum():
            end -= 1
        for m in _WORD.finditer(self.text, self._scanned, end):
            self._words.append((m.group().lower(), m.start()))
            first = len(self._words) - self.ngram
            if first >= 0 and self._seen(self._grams, tuple(w for w, _ in self._words[first:]),
                                         first, self._words[first][1], self.ngram):
                return True
        self._scanned = max(self._scanned, end)
        while (nl := self.text.find("\n", self._line_start)) != -1:
            line = " ".join(self.text[self._line_start:nl].split()).lower()
            start = self._line_start
            self._line_start = nl + 1
            if len(line) >= MIN_LINE_CHARS and self._seen(self._lines, line, start, start, 1):
                return True
        return False

    def _seen(self, table: dict, key: object, pos: int, start: int, span: int) -> bool:
        """Count an occurrence of ``key`` at ``pos`` (word or char index; it covers ``span``)
        beginning at character ``start``."""
        seen = table.setdefault(key, [])
        if seen and pos < seen[-1][0] + span:
            return False  # overlapping itself ("a a a a a a a"): counted once it has moved on
        seen.append((pos, start))
        if len(seen) >= self.times:
            self.cut = seen[1][1]
            self.repeated = key if isinstance(key, str) else " ".join(key)  # type: ignore[arg-type]
            return True
        return False

    def answer(self) -> str:
        """The answer up to where it began to repeat (all of it if it never did)."""
        return self.text if self.cut is None else self.text[:self.cut].rstrip()
