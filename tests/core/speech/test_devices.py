"""Finding the microphone: PortAudio lists devices once, so one that appears later needs a
refresh, and a refresh must never close a stream that is recording."""

from __future__ import annotations

import os
import time

import pytest

from deskmind.core.speech import capture
from deskmind.core.speech.capture import (AudioCapture, MicrophoneError, input_device_names,
                                          refresh_device_list, resolve_input_device)
from tests.fakes.audio import reinit_sounddevice


@pytest.fixture
def no_server_at_start(pulse, tmp_path):
    """PortAudio started while no sound server was reachable; the server is reachable again
    afterwards (as after plugging a headset in, or the sound server starting late)."""
    os.environ["PULSE_SERVER"] = f"unix:{tmp_path / 'no-server-here'}"
    sd = reinit_sounddevice()
    os.environ["PULSE_SERVER"] = pulse.env["PULSE_SERVER"]
    yield sd
    reinit_sounddevice()


def test_a_microphone_that_appears_after_start_is_found(no_server_at_start):
    sd = no_server_at_start
    assert input_device_names(sd) == []                      # PortAudio's list is from before
    dev, name = resolve_input_device(sd, "pulse")            # refreshed once, then found
    assert dev == "pulse" and "pulse" in name
    assert "pulse" in input_device_names(sd)


def test_a_missing_microphone_is_still_a_clear_error_after_the_refresh(sd):
    with pytest.raises(MicrophoneError, match="microphone 'no-such-mic' was not found.*input_device"):
        resolve_input_device(sd, "no-such-mic")


def test_no_refresh_while_a_stream_records(sd):
    blocks = []
    cap = AudioCapture(sd, on_block=blocks.append, device="pulse")
    cap.start()
    try:
        assert cap.wait_first_block(10)
        assert capture._open_streams[0] == 1
        assert refresh_device_list(sd) is False              # it would close this stream
        with pytest.raises(MicrophoneError):
            resolve_input_device(sd, "no-such-mic")          # looked up, but not refreshed
        seen = len(blocks)
        time.sleep(0.5)
        assert len(blocks) > seen and cap.error is None      # still recording
    finally:
        cap.stop()
    assert capture._open_streams[0] == 0
    assert refresh_device_list(sd) is True                   # nothing open: free to refresh
