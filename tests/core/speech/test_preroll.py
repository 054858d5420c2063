import threading

import numpy as np
import pytest

from deskmind.core.speech.preroll import PreRoll, PreRollError


def ramp(start, n):
    return np.arange(start, start + n, dtype=np.float32)


def test_take_before_the_ring_fills_returns_what_was_fed_in_order():
    p = PreRoll(seconds=0.01, rate=1000)  # 10 samples
    p.feed(ramp(0, 3))
    p.feed(ramp(3, 4))
    assert p.take().tolist() == list(range(7))


def test_older_samples_fall_off_and_order_survives_the_wrap():
    p = PreRoll(seconds=0.01, rate=1000)
    for start in range(0, 37, 3):  # 39 samples in blocks of 3, wrapping several times
        p.feed(ramp(start, 3))
    assert p.take().tolist() == list(range(29, 39))


def test_a_block_longer_than_the_ring_keeps_its_tail():
    p = PreRoll(seconds=0.01, rate=1000)
    p.feed(ramp(0, 25))
    assert p.take().tolist() == list(range(15, 25))


def test_take_empties_the_ring_and_returns_a_copy():
    p = PreRoll(seconds=0.01, rate=1000)
    p.feed(ramp(0, 10))
    first = p.take()
    first[:] = -1
    assert p.take().size == 0
    p.feed(ramp(100, 2))
    assert p.take().tolist() == [100, 101]


def test_stereo_blocks_keep_the_first_channel_and_memory_stays_fixed():
    p = PreRoll(seconds=0.3, rate=16000)
    block = np.stack([ramp(0, 1024), -ramp(0, 1024)], axis=1)
    for _ in range(200):  # far more than 0.3 s of audio
        p.feed(block)
    out = p.take()
    assert out.shape == (4800,)
    assert out.dtype == np.float32
    assert (out >= 0).all()


@pytest.mark.parametrize("seconds", [0, -1, 2.5, float("nan")])
def test_bad_lengths_are_refused_by_name(seconds):
    with pytest.raises(PreRollError, match="pre-roll must be"):
        PreRoll(seconds=seconds)


def test_a_3d_block_is_refused():
    p = PreRoll(seconds=0.01, rate=1000)
    with pytest.raises(PreRollError, match="1-D or 2-D, not 3-D"):
        p.feed(np.zeros((2, 2, 2), dtype=np.float32))
    assert p.take().size == 0


def test_feeding_from_another_thread_while_taking_never_tears_the_order():
    p = PreRoll(seconds=0.01, rate=1000)
    stop = threading.Event()

    def feeder():
        n = 0
        while not stop.is_set():
            p.feed(ramp(n, 4))
            n += 4

    t = threading.Thread(target=feeder)
    t.start()
    try:
        for _ in range(500):
            got = p.take()
            assert (np.diff(got) == 1).all()
    finally:
        stop.set()
        t.join()
