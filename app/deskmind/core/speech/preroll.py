"""A bounded ring of the most recent microphone samples, kept while a talk key is armed.

With pre-roll on, the input stream stays open while a talk key is armed and every block goes
through ``PreRoll.feed``; at key-down the recording starts from ``PreRoll.take`` so speech that
begins with the key press keeps its first word. Memory is fixed at construction: the ring never
holds more than ``seconds`` of audio, however long the key stays armed.
"""

from __future__ import annotations

import threading

import numpy as np

from deskmind.core.errors import DeskmindError
from deskmind.core.speech.audio import SAMPLE_RATE

MAX_PREROLL_SECONDS = 2.0


class PreRollError(DeskmindError):
    """A pre-roll length or an audio block that cannot be kept."""


class PreRoll:
    """The last ``seconds`` of mono float32 audio at ``rate`` Hz, oldest first on ``take``."""

    def __init__(self, seconds: float = 0.3, rate: int = SAMPLE_RATE) -> None:
        if not (0 < seconds <= MAX_PREROLL_SECONDS):
            raise PreRollError(
                f"pre-roll must be more than 0 and at most {MAX_PREROLL_SECONDS:g} s, not {seconds!r}"
            )
        if rate <= 0:
            raise PreRollError(f"sample rate must be positive, not {rate!r}")
        self.capacity = int(round(seconds * rate))
        self._ring = np.zeros(self.capacity, dtype=np.float32)
        self._end = 0  # index one past the newest sample
        self._filled = 0
        self._lock = threading.Lock()

    def feed(self, block: np.ndarray) -> None:
        """Keep ``block`` (mono, or the first channel of a 2-D block); older samples fall off."""
        data = np.asarray(block)
        if data.ndim == 2:
            data = data[:, 0]
        if data.ndim != 1:
            raise PreRollError(f"an audio block must be 1-D or 2-D, not {data.ndim}-D")
        data = data.astype(np.float32, copy=False)
        if len(data) >= self.capacity:
            data = data[-self.capacity:]
        n = len(data)
        if n == 0:
            return
        with self._lock:
            first = min(n, self.capacity - self._end)
            self._ring[self._end:self._end + first] = data[:first]
            self._ring[: n - first] = data[first:]
            self._end = (self._end + n) % self.capacity
            self._filled = min(self.capacity, self._filled + n)

    @property
    def filled(self) -> int:
        """How many samples are kept now."""
        return self._filled

    def take(self) -> np.ndarray:
        """The kept samples in time order (a copy), and empty the ring for the next press."""
        with self._lock:
            if self._filled < self.capacity:
                out = self._ring[self._end - self._filled:self._end].copy()
            else:
                out = np.concatenate((self._ring[self._end:], self._ring[: self._end]))
            self._end = 0
            self._filled = 0
            return out
