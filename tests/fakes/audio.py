"""Real audio for tests: espeak-ng speech and a PulseAudio user daemon as a virtual microphone.

The daemon runs with its own runtime/home dirs in a temp folder and two null sinks:
``vspk`` (the default sink: what the computer plays, i.e. "others") and ``vmicsink``, whose
monitor is remapped into the source ``vmic`` (the default source: the microphone, i.e. "me").
``paplay`` into a sink is audio arriving at that device. sounddevice reaches the daemon through
ALSA's ``pulse`` device; PortAudio must be re-initialised after the daemon starts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

MIC_SINK = "vmicsink"
MIC_SOURCE = "vmic"
SPEAKER_SINK = "vspk"


def have(*tools: str) -> str | None:
    missing = [t for t in tools if shutil.which(t) is None]
    return ", ".join(missing) or None


def speech_wav(dest_dir: Path, text: str, *, rate: int = 16000, speed: int = 150) -> Path:
    """Speech for ``text`` made by espeak-ng (resampled with sox), cached by text in dest_dir."""
    key = hashlib.sha1(f"{text}|{rate}|{speed}".encode()).hexdigest()[:12]
    out = dest_dir / f"speech-{key}.wav"
    if not out.exists():
        raw = dest_dir / f"raw-{key}.wav"
        subprocess.run(["espeak-ng", "-s", str(speed), "-w", str(raw), text], check=True,
                       capture_output=True)
        subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)],
                       check=True, capture_output=True)
        raw.unlink()
    return out


class PulseServer:
    """A private PulseAudio daemon; ``env`` points clients (pactl, paplay, ALSA) at it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen | None = None
        self._keepalive: list[subprocess.Popen] = []
        runtime = root / "runtime"
        runtime.mkdir(parents=True, exist_ok=True)
        os.chmod(runtime, 0o700)
        self.socket = runtime / "pulse" / "native"
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(root),
                    "XDG_CONFIG_HOME": str(root / "config"), "XDG_STATE_HOME": str(root / "state"),
                    "PULSE_SERVER": f"unix:{self.socket}"}

    def start(self) -> "PulseServer":
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--system=false",
             "--disallow-exit", "--log-target=stderr",
             "-L", "module-native-protocol-unix auth-anonymous=1",
             "-L", f"module-null-sink sink_name={SPEAKER_SINK} rate=16000 channels=1",
             "-L", f"module-null-sink sink_name={MIC_SINK} rate=16000 channels=1",
             "-L", f"module-remap-source source_name={MIC_SOURCE} master={MIC_SINK}.monitor"],
            env={k: v for k, v in self.env.items() if k != "PULSE_SERVER"},
            stdout=subprocess.DEVNULL, stderr=open(self.root / "pulse.log", "wb"))
        deadline = time.monotonic() + 10
        while self.pactl("info", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PulseAudio did not start: " + (self.root / "pulse.log").read_text()[-500:])
            time.sleep(0.05)
        self.pactl("set-default-source", MIC_SOURCE)
        self.pactl("set-default-sink", SPEAKER_SINK)
        # An idle null sink answers with ~2 s latency; a silent low-latency stream keeps it awake.
        for sink in (SPEAKER_SINK, MIC_SINK):
            self._keepalive.append(subprocess.Popen(
                ["pacat", "--playback", f"--device={sink}", "--latency-msec=20", "--rate=16000",
                 "--channels=1", "--format=s16le"],
                stdin=open("/dev/zero", "rb"), env=self.env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        return self

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              check=check, timeout=10)

    def play(self, wav: Path, sink: str = MIC_SINK, *, wait: bool = True) -> subprocess.Popen:
        """Play a file into a sink: MIC_SINK is someone speaking into the microphone."""
        p = subprocess.Popen(["paplay", f"--device={sink}", str(wav)], env=self.env)
        if wait:
            p.wait(timeout=120)
        return p

    def kill(self) -> None:
        """The sound server vanishes (as when a USB microphone is pulled or the server crashes)."""
        for p in self._keepalive:
            p.kill()
            p.wait()
        self._keepalive = []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close(self) -> None:
        """Kill the daemon and remove its temp folder."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    stop = kill


def reinit_sounddevice():
    """sounddevice with PortAudio re-initialised, so it sees the daemon that runs now."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
    return sd


@pytest.fixture(scope="session")
def speech_dir() -> Iterator[Path]:
    missing = have("espeak-ng", "sox")
    if missing:
        pytest.skip(f"needs {missing} (apt install espeak-ng sox)")
    d = Path(tempfile.mkdtemp(prefix="dm-speech-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start_pulse(prefix: str = "dm-pulse-") -> PulseServer:
    missing = have("pulseaudio", "pactl", "paplay", "pacat")
    if missing:
        pytest.skip(f"needs {missing} (apt install pulseaudio pulseaudio-utils)")
    return PulseServer(Path(tempfile.mkdtemp(prefix=prefix))).start()


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseServer]:
    """A PulseAudio daemon for the session; this process's audio clients talk to it."""
    server = start_pulse()
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER",)}
    os.environ["PULSE_SERVER"] = server.env["PULSE_SERVER"]
    try:
        yield server
    finally:
        server.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def sd(pulse: PulseServer):
    """The real sounddevice module, seeing the test's PulseAudio daemon."""
    os.environ["PULSE_SERVER"] = pulse.env["PULSE_SERVER"]
    return reinit_sounddevice()
