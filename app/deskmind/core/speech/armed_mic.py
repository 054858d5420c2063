"""Where a talk key's recording comes from: an armed microphone with pre-roll, or a fresh stream.

With pre-roll on, :class:`ArmedMicrophone` keeps one input stream open while the talk keys are
armed; its blocks go into a :class:`PreRoll` ring (a few hundred ms, in memory only, dropped
continuously). At key-down :meth:`ArmedMicrophone.begin` hands the ring's contents to the new
recording and routes the following blocks to it, so speech that starts with the key press keeps
its first word. With pre-roll off, :func:`start_take` opens a stream at key-down instead.

Either way the caller gets a :class:`Take`: ``pre`` (audio from before key-down), then blocks
through its hook, ``stop()``, and ``first_sample_at`` (the monotonic time of its first sample,
to measure key-down → first captured sample).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Protocol

import numpy as np

from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.speech.capture import AudioCapture, BlockHook, ErrorHook
from deskmind.core.speech.preroll import MAX_PREROLL_SECONDS, PreRoll

log = logging.getLogger(__name__)

# Smaller blocks than a note's own stream: at key-up the tail of the speech is at most one
# block away, and key-up → text is what the person waits for.
ARMED_BLOCK_S = 0.05
TAIL_WAIT_S = 0.12
# The key press reaches the recorder through the hotkey listener, the GUI thread and a worker;
# on a busy machine that took 0.7 s here. The ring keeps this much more than the pre-roll and
# the take is cut to start ``seconds`` before the key went down.
LATE_START_S = 1.0


class Take(Protocol):
    pre: np.ndarray
    rate: int
    device_name: str

    @property
    def error(self) -> DeskmindError | None: ...

    @property
    def first_sample_at(self) -> float | None: ...

    def wait_first_block(self, timeout: float) -> bool: ...

    def stop(self) -> None: ...


class DirectTake:
    """A stream opened at key-down (pre-roll off): nothing from before the key."""

    def __init__(self, sd: Any, device: str | int | None, on_block: BlockHook,
                 on_error: ErrorHook | None) -> None:
        self.pre = np.zeros(0, np.float32)
        self._cap = AudioCapture(sd, on_block=on_block, on_error=on_error, device=device,
                                 name="microphone")
        self._cap.start()
        self.rate = self._cap.rate
        self.device_name = self._cap.device_name

    @property
    def error(self) -> DeskmindError | None:
        return self._cap.error

    @property
    def first_sample_at(self) -> float | None:
        first = self._cap.first_block_at
        if first is None:
            return None
        return first - self._cap._block_s  # the block arrived once its last sample was captured

    def wait_first_block(self, timeout: float) -> bool:
        return self._cap.wait_first_block(timeout)

    def stop(self) -> None:
        self._cap.stop()


class ArmedTake:
    """A recording fed by an armed microphone: the pre-roll, then live blocks."""

    def __init__(self, mic: "ArmedMicrophone", pre: np.ndarray, first_sample_at: float | None) -> None:
        self._mic = mic
        self.pre = pre
        self.rate = mic.rate
        self.device_name = mic.device_name
        self._first = first_sample_at

    @property
    def error(self) -> DeskmindError | None:
        return self._mic.error

    @property
    def first_sample_at(self) -> float | None:
        return self._first

    def wait_first_block(self, timeout: float) -> bool:
        """True once the take holds audio (the pre-roll counts)."""
        end = time.monotonic() + timeout
        while self._first is None and not self.pre.size and self.error is None and time.monotonic() < end:
            time.sleep(0.01)
        return self._first is not None or bool(self.pre.size)

    def stop(self) -> None:
        self._mic.end(self)


class ArmedMicrophone:
    """One input stream kept open while talk keys are armed. ``arm``/``disarm`` from any
    thread; blocks arrive on the capture's consumer thread."""

    def __init__(self, sd: Any, *, device: str | int | None = None, seconds: float = 0.3,
                 on_error: ErrorHook | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sd = sd
        self.device = device
        self.seconds = seconds
        PreRoll(seconds)  # refuse a bad length now, not on the first block
        self._on_error = on_error
        self._clock = clock
        self._ring_s = min(MAX_PREROLL_SECONDS, seconds + LATE_START_S)
        self._lock = threading.Lock()
        self._cap: AudioCapture | None = None
        self._ring: PreRoll | None = None
        self._sink: BlockHook | None = None
        self._take: ArmedTake | None = None
        self._last_at: float | None = None
        self._blocks_seen = 0
        self.rate = 0
        self.device_name = ""

    @property
    def armed(self) -> bool:
        cap = self._cap
        return cap is not None and cap.error is None

    @property
    def error(self) -> DeskmindError | None:
        cap = self._cap
        return cap.error if cap is not None else None

    @property
    def kept_s(self) -> float:
        """Seconds of audio in the ring now (0 until the first blocks arrive)."""
        ring = self._ring
        return ring.filled / self.rate if ring is not None and self.rate else 0.0

    def arm(self) -> None:
        """Open the microphone (raises MicrophoneError). Safe to call when armed already."""
        with self._lock:
            if self._cap is not None and self._cap.error is None:
                return
            old, self._cap = self._cap, None
        if old is not None:
            old.stop()
        cap = AudioCapture(self._sd, on_block=self._on_block, on_error=self._failed,
                           device=self.device, name="microphone", block_s=ARMED_BLOCK_S,
                           clock=self._clock)
        with self._lock:
            self._ring = None
            self._cap = cap
        try:
            cap.start()
        except DeskmindError:
            with self._lock:
                self._cap = None
            raise
        self.rate, self.device_name = cap.rate, cap.device_name
        log.info("microphone armed with %.2f s of pre-roll (%s)", self.seconds, cap.device_name)

    def disarm(self) -> None:
        with self._lock:
            cap, self._cap, self._ring = self._cap, None, None
        if cap is not None:
            cap.stop()

    def _failed(self, exc: DeskmindError) -> None:  # consumer thread
        if self._on_error is not None:
            self._on_error(exc)

    def _on_block(self, block: np.ndarray) -> None:  # consumer thread
        with self._lock:
            self._last_at = self._clock()
            self._blocks_seen += 1
            sink = self._sink
            if sink is None:
                if self._ring is None and self._cap is not None:
                    self._ring = PreRoll(self._ring_s, self._cap.rate)
                if self._ring is not None:
                    self._ring.feed(block)
                return
            take = self._take
            if take is not None and take._first is None and self._cap is not None:
                take._first = self._last_at - len(block) / self._cap.rate
        sink(block)

    def begin(self, on_block: BlockHook, since: float | None = None) -> ArmedTake:
        """Key-down: a take that starts with the pre-roll; later blocks go to ``on_block``.
        ``since`` is the monotonic time the key went down: the take starts ``seconds`` before
        it (as far as the ring reaches back), however late this call comes."""
        with self._lock:
            if self._cap is None or self._cap.error is not None:
                raise DeskmindError("the microphone is not armed")
            if self._sink is not None:
                raise UserInputError("the microphone is already recording for the other talk key")
            pre = self._ring.take() if self._ring is not None else np.zeros(0, np.float32)
            rate = self._cap.rate
            if self._last_at is not None and len(pre):
                keep_from = (since if since is not None else self._last_at) - self.seconds
                keep = int(round((self._last_at - keep_from) * rate))
                pre = pre[len(pre) - keep:] if 0 < keep < len(pre) else (pre if keep > 0 else pre[:0])
            first = (self._last_at - len(pre) / rate) if (self._last_at is not None and len(pre)) else None
            self._sink = on_block
            # With nothing kept yet (just armed), the first live block sets first_sample_at.
            take = self._take = ArmedTake(self, pre, first)
        return take

    def end(self, take: ArmedTake) -> None:
        """Key-up: wait for the block that holds the last words (at most one), then go back
        to filling the ring."""
        if self._take is not take:
            return
        seen = self._blocks_seen
        deadline = self._clock() + TAIL_WAIT_S
        while self._blocks_seen == seen and self._clock() < deadline and self.armed:
            time.sleep(0.005)
        with self._lock:
            self._sink = None
            self._take = None


def start_take(sd: Any, device: str | int | None, armed: ArmedMicrophone | None,
               on_block: BlockHook, on_error: ErrorHook | None = None,
               since: float | None = None) -> Take:
    """A recording from the armed microphone when it is armed, else from a stream opened now.
    ``since``: the monotonic time the key went down."""
    if armed is not None and armed.armed:
        try:
            return armed.begin(on_block, since)
        except UserInputError:
            raise
        except DeskmindError as exc:  # it failed between the check and now: open one
            log.info("pre-roll unavailable (%s): opening the microphone now", exc)
    return DirectTake(sd, device, on_block, on_error)
