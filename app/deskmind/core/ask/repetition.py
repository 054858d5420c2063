"""A stop for runaway repetition in a streamed answer.

Small models, once they repeat a phrase, tend to repeat it until the token cap: the cap alone
would still show the person a wall of the same line. The guard watches the stream as it comes
and reports the moment the answer is looping: the same run of words back to back, at least
three times and at least eight words in all ("The key is under the pot [1]." three times over,
"the" eight times). Runs that recur with other words between them are not loops (a list of
files in one folder repeats the folder's path), so they never stop an answer. The answer is
then cut where the loop began (its second turn).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TIMES = 3            # a run back to back this many times...
MIN_WORDS = 8        # ...covering at least this many words is a loop
MAX_PERIOD = 60      # the longest run (in words) looked for

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class RepetitionGuard:
    """Feed it the answer as it streams; ``cut`` is set once the stream started looping."""

    text: str = ""
    cut: int | None = None      # where the answer should end: the start of the second turn
    repeated: str = ""          # the run that looped
    _scanned: int = 0
    _words: list[str] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)

    def feed(self, piece: str) -> bool:
        """Add streamed text; True when the stream has started to loop."""
        if self.cut is not None:
            return True
        self.text += piece
        # Only complete words: the last one may still be growing.
        end = len(self.text)
        while end > self._scanned and self.text[end - 1].isalnum():
            end -= 1
        for m in _WORD.finditer(self.text, self._scanned, end):
            self._words.append(m.group().lower())
            self._starts.append(m.start())
            if self._looping():
                return True
        self._scanned = max(self._scanned, end)
        return False

    def _looping(self) -> bool:
        w = self._words
        for period in range(1, min(MAX_PERIOD, len(w) // TIMES) + 1):
            turns = max(TIMES, -(-MIN_WORDS // period))
            if turns * period > len(w):
                continue
            unit = w[-period:]
            if all(w[len(w) - k * period:len(w) - (k - 1) * period] == unit for k in range(2, turns + 1)):
                first = len(w) - turns * period
                self.cut = self._starts[first + period]
                self.repeated = " ".join(unit)
                return True
        return False

    def answer(self) -> str:
        """The answer up to where it began to loop (all of it if it never did)."""
        if self.cut is None:
            return self.text
        head, _, last = self.text[:self.cut].rpartition("\n")
        # The second turn's list marker ("- ") has no words: it goes with the turn.
        return (head if head and not _WORD.search(last) else self.text[:self.cut]).rstrip()
