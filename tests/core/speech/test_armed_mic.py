"""Pre-roll: speech that begins before the key-down reaches the recording, from a virtual mic."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from deskmind.core.errors import UserInputError
from deskmind.core.speech.armed_mic import ArmedMicrophone, DirectTake, start_take
from deskmind.core.speech.preroll import PreRollError
from tests.core.speech.conftest import words
from tests.fakes.audio import MIC_SINK, speech_wav

SAID = "Remember to water the tomatoes in the garden."
# The key-down reaches the recorder this long after the first sound of the first word
# (listener thread, GUI thread, worker): more than it takes here, so without the pre-roll the
# start of "Remember" would never be captured.
KEY_DELAY_S = 0.25


def wait_blocks(mic: ArmedMicrophone, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while mic._blocks_seen < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mic._blocks_seen >= n, "the armed microphone delivered no audio"


def speech_arrived(mic: ArmedMicrophone) -> bool:
    ring = mic._ring
    return ring is not None and float(np.abs(ring._ring).max()) > 0.05


def collect(take_factory, pulse, wav, onset=None) -> tuple[np.ndarray, float, object]:
    """Play ``wav`` into the microphone and press the key KEY_DELAY_S after the speech starts
    to arrive (``onset`` tells when) or after playback starts."""
    blocks: list[np.ndarray] = []
    player = pulse.play(wav, MIC_SINK, wait=False)
    deadline = time.monotonic() + 5
    while onset is not None and not onset() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(KEY_DELAY_S)
    pressed = time.monotonic()
    take = take_factory(blocks.append)
    player.wait(30)
    time.sleep(0.3)
    take.stop()
    return np.concatenate([take.pre, *blocks]), pressed, take


def test_armed_microphone_keeps_the_first_word_said_before_key_down(sd, pulse, speech_dir, whisper_engine):
    mic = ArmedMicrophone(sd, seconds=0.4)
    mic.arm()
    try:
        wait_blocks(mic, 10)   # the ring is full: 0.5 s of silence went by
        audio, pressed, take = collect(mic.begin, pulse, speech_wav(speech_dir, SAID),
                                       onset=lambda: speech_arrived(mic))
    finally:
        mic.disarm()
    assert len(take.pre) == int(0.4 * take.rate)
    # The recording's first sample is from before the key went down.
    assert take.first_sample_at is not None and take.first_sample_at < pressed
    text = whisper_engine.transcribe(audio).text
    assert "remember" in words(text), text


def test_without_pre_roll_the_stream_opens_at_key_down(sd, pulse, speech_dir):
    audio, pressed, take = collect(lambda hook: start_take(sd, None, None, hook), pulse,
                                   speech_wav(speech_dir, SAID))
    assert isinstance(take, DirectTake) and take.pre.size == 0
    assert take.first_sample_at is not None and take.first_sample_at > pressed - 0.01
    assert audio.size > 16000


def test_one_take_at_a_time_and_the_ring_refills_after(sd, pulse):
    mic = ArmedMicrophone(sd, seconds=0.2)
    mic.arm()
    try:
        wait_blocks(mic, 5)
        first = mic.begin(lambda b: None)
        with pytest.raises(UserInputError, match="already recording for the other talk key"):
            mic.begin(lambda b: None)
        first.stop()
        n = mic._blocks_seen
        wait_blocks(mic, n + 5)
        again = mic.begin(lambda b: None)
        assert len(again.pre) == int(0.2 * again.rate)
        again.stop()
    finally:
        mic.disarm()
    assert not mic.armed


def test_the_ring_holds_what_it_is_told_and_no_more(sd, pulse):
    with pytest.raises(PreRollError, match="at most 2 s"):
        ArmedMicrophone(sd, seconds=5)
    mic = ArmedMicrophone(sd, seconds=0.1)
    mic.arm()
    try:
        wait_blocks(mic, 20)  # a second of audio went through a ring of 0.1 s
        take = mic.begin(lambda b: None)
        assert len(take.pre) == int(0.1 * take.rate)
        take.stop()
    finally:
        mic.disarm()


def test_a_voice_note_starts_from_the_pre_roll(core, speech, sd, pulse, speech_dir):
    speech._sd = sd
    assert speech.arm_microphone() is True
    try:
        rec = speech.voice_note_recorder()
        wait_blocks(speech.armed_microphone, 10)
        player = pulse.play(speech_wav(speech_dir, SAID), MIC_SINK, wait=False)
        time.sleep(KEY_DELAY_S)
        rec.start()
        player.wait(30)
        time.sleep(0.3)
        note = rec.stop()
    finally:
        speech.disarm_microphone()
    assert "remember" in words(note.text), note.text
    speech.settings.preroll = False
    assert speech.arm_microphone() is False and speech.armed_microphone is None


def test_a_key_press_that_reaches_the_recorder_late_still_starts_before_the_key(sd, pulse):
    """On a busy machine the press went through the listener, GUI thread and a worker in
    0.7 s: the take still starts ``seconds`` before the key went down."""
    mic = ArmedMicrophone(sd, seconds=0.3)
    mic.arm()
    try:
        wait_blocks(mic, 30)                     # 1.5 s of audio went through the ring
        pressed = time.monotonic() - 0.7         # the key went down 0.7 s ago
        take = mic.begin(lambda b: None, since=pressed)
        take.stop()
    finally:
        mic.disarm()
    assert 0.95 * take.rate <= len(take.pre) <= 1.05 * take.rate   # 0.7 s late + 0.3 s before
    assert abs(take.first_sample_at - (pressed - 0.3)) < 0.06
