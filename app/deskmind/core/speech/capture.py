"""Microphone (and system audio) capture through sounddevice.

The PortAudio callback does one thing: copy the block into a queue. A consumer thread takes
blocks off the queue and hands them to the owner (files, buffers, level meters), and notices
when a device stops delivering audio (unplugged, sound server gone).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any, Callable

import numpy as np

from deskmind.core.errors import DeskmindError
from deskmind.core.speech.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

# PULSE_SOURCE is read by libpulse when a stream connects; opening streams one at a time
# under this lock lets one process record two different PulseAudio/PipeWire sources.
_ENV_LOCK = threading.Lock()
# Streams this process has open (changed under _ENV_LOCK): PortAudio is restarted only at zero.
_open_streams = [0]


class MicrophoneError(DeskmindError):
    """A microphone that is missing, busy, or stopped delivering audio."""


BlockHook = Callable[[np.ndarray], None]
ErrorHook = Callable[[DeskmindError], None]


def input_device_names(sd: Any) -> list[str]:
    try:
        return [d["name"] for d in sd.query_devices() if d.get("max_input_channels", 0) > 0]
    except Exception:  # PortAudio could not even list devices
        return []


def refresh_device_list(sd: Any) -> bool:
    """Have PortAudio list the devices again; True if it did.

    PortAudio lists devices once, when it starts, so a microphone plugged in (or a sound server
    started) since then is not seen. Restarting PortAudio closes every open stream, so it is
    done only while this process has none open (a meeting recording, say). sounddevice has no
    public call for this; its own ``_terminate``/``_initialize`` pair is what it uses itself.
    """
    terminate, initialize = getattr(sd, "_terminate", None), getattr(sd, "_initialize", None)
    if terminate is None or initialize is None:
        return False
    with _ENV_LOCK:
        if _open_streams[0]:
            return False
        try:
            terminate()
            initialize()
        except Exception as exc:
            log.debug("could not refresh the audio device list: %s", exc)
            return False
    return True


def resolve_input_device(sd: Any, device: str | int | None,
                         refresh: bool = True) -> tuple[int | str | None, str]:
    """(device for sounddevice, human name); raises MicrophoneError when there is none.

    When the device is not among those PortAudio listed, the list is refreshed once (see
    :func:`refresh_device_list`) and looked at again."""
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)
    names = input_device_names(sd)
    try:
        if not names:
            raise MicrophoneError("no microphone found: connect one, or check that the sound "
                                  "server (PulseAudio/PipeWire) is running")
        try:
            info = sd.query_devices(device, "input")
        except Exception as exc:  # ValueError (no match) or PortAudioError
            wanted = "the default microphone" if device is None else f"microphone '{device}'"
            raise MicrophoneError(f"{wanted} was not found ({exc}); inputs here: {', '.join(names)}; "
                                  "set [speech] input_device to one of them") from exc
    except MicrophoneError:
        if refresh and refresh_device_list(sd):
            log.info("audio devices listed again, looking for the microphone once more")
            return resolve_input_device(sd, device, refresh=False)
        raise
    return (device if device is not None else info.get("index")), str(info.get("name"))


class AudioCapture:
    """One input stream and its consumer thread.

    ``on_block`` receives mono float32 blocks at :attr:`rate` on the consumer thread. Errors
    found there (device gone, a block hook that failed) go to ``on_error`` once, after which
    the capture stops consuming; :meth:`stop` may still be called.
    """

    def __init__(self, sd: Any, *, on_block: BlockHook, on_error: ErrorHook | None = None,
                 device: str | int | None = None, pulse_source: str | None = None,
                 name: str = "microphone", block_s: float = 0.1, stall_timeout_s: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sd = sd
        self._on_block = on_block
        self._on_error = on_error
        self.device = device
        self.pulse_source = pulse_source
        self.name = name
        self._block_s = block_s
        self._stall_timeout = stall_timeout_s
        self._clock = clock
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self.rate = SAMPLE_RATE
        self.device_name = ""
        self.error: DeskmindError | None = None
        self.frames = 0
        self.first_block_at: float | None = None
        self.last_block_at: float | None = None
        self.started_at: float | None = None

    # -- the PortAudio thread ---------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._queue.put(indata.copy())

    # -- owner's thread -----------------------------------------------------------------

    def start(self) -> None:
        """Open the device and start consuming. Raises :class:`MicrophoneError`."""
        sd = self._sd
        if self.pulse_source is None:
            dev, self.device_name = resolve_input_device(sd, self.device)
        else:
            dev, self.device_name = (self.device or "pulse"), self.pulse_source
        stream = None
        last: Exception | None = None
        with _ENV_LOCK:
            saved = os.environ.get("PULSE_SOURCE")
            if self.pulse_source is not None:
                os.environ["PULSE_SOURCE"] = self.pulse_source
            try:
                # 16 kHz when the device (or the sound server) converts for us; else its own rate.
                for rate in (SAMPLE_RATE, None):
                    try:
                        if rate is None:
                            rate = int(sd.query_devices(dev, "input")["default_samplerate"])
                        stream = sd.InputStream(device=dev, samplerate=rate, channels=1,
                                                dtype="float32", blocksize=int(rate * self._block_s),
                                                callback=self._callback)
                        self.rate = int(rate)
                        break
                    except Exception as exc:  # PortAudioError or ValueError for a bad rate
                        last = exc
            finally:
                if saved is None:
                    os.environ.pop("PULSE_SOURCE", None)
                else:
                    os.environ["PULSE_SOURCE"] = saved
            if stream is None:
                hint = ("check [speech] system_source ('pactl list short sources' lists them)"
                        if self.pulse_source else "is another program using it? Pick another "
                        "with [speech] input_device")
                raise MicrophoneError(
                    f"the {self.name} '{self.device_name}' could not be opened ({last}); {hint}") from last
            try:
                stream.start()
            except Exception as exc:
                stream.close()
                raise MicrophoneError(f"the {self.name} '{self.device_name}' could not start "
                                      f"recording ({exc}); is another program using it?") from exc
            _open_streams[0] += 1
        self._stream = stream
        self.started_at = self._clock()
        self._running.set()
        self._thread = threading.Thread(target=self._consume, name=f"capture-{self.name}", daemon=True)
        self._thread.start()

    def wait_first_block(self, timeout: float) -> bool:
        end = self._clock() + timeout
        while self.first_block_at is None and self.error is None and self._clock() < end:
            time.sleep(0.01)
        return self.first_block_at is not None

    def _consume(self) -> None:
        last_block = self._clock()
        while True:
            try:
                block = self._queue.get(timeout=0.2)
            except queue.Empty:
                if not self._running.is_set():
                    return
                if self._clock() - last_block > self._stall_timeout:
                    got = self.frames / self.rate
                    self._fail(MicrophoneError(
                        f"the {self.name} '{self.device_name}' stopped delivering audio after "
                        f"{got:.1f} s (unplugged, or the sound server went away); what was "
                        "recorded until then is kept"))
                    return
                continue
            if block is None:
                return
            last_block = self._clock()
            self.last_block_at = last_block
            if self.first_block_at is None:
                self.first_block_at = last_block
            mono = block[:, 0] if block.ndim == 2 else block
            self.frames += mono.shape[0]
            try:
                self._on_block(mono)
            except DeskmindError as exc:
                self._fail(exc)
                return
            except Exception as exc:  # a hook bug must not kill the thread silently
                log.exception("audio block hook failed")
                self._fail(DeskmindError(f"recording stopped: {type(exc).__name__}: {exc}"))
                return

    def _fail(self, exc: DeskmindError) -> None:
        if self.error is None:
            self.error = exc
            log.warning("%s", exc)
            self._running.clear()
            if self._on_error is not None:
                self._on_error(exc)

    def stop(self) -> None:
        """Stop the device and drain what it already delivered. Safe to call twice."""
        stream, self._stream = self._stream, None
        if stream is not None:
            # PortAudio's ALSA host never returns from stop() on an input that delivers nothing
            # (a suspended PulseAudio source, a pipe nobody writes to) and spins a core while it
            # waits; abort() returns at once, and such an input has nothing left to drain.
            last = self.last_block_at
            flowing = last is not None and self._clock() - last < max(1.0, 5 * self._block_s)
            try:
                if flowing:
                    stream.stop()
                else:
                    stream.abort()
            except Exception as exc:  # a vanished device can fail to stop; it is gone anyway
                log.debug("stopping %s: %s", self.name, exc)
            try:
                stream.close()
            except Exception as exc:
                log.debug("closing %s: %s", self.name, exc)
            with _ENV_LOCK:
                _open_streams[0] -= 1
        self._running.clear()
        self._queue.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._thread = None
