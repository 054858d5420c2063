"""Reading, resampling and writing audio. Whisper wants 16 kHz mono float32."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


class AudioFileError(UserInputError):
    """An audio file that cannot be read or holds nothing."""


def to_mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    return a if a.ndim == 1 else a.mean(axis=1, dtype=np.float32)


def resample(audio: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of a whole buffer (FFT), good enough for speech."""
    a = to_mono(audio)
    if rate_in == rate_out or a.size == 0:
        return a
    n_out = int(round(a.size * rate_out / rate_in))
    if n_out == 0:
        return np.zeros(0, np.float32)
    spec = np.fft.rfft(a)
    keep = n_out // 2 + 1
    if keep <= spec.size:
        spec = spec[:keep]
    else:
        spec = np.concatenate([spec, np.zeros(keep - spec.size, spec.dtype)])
    return (np.fft.irfft(spec, n_out) * (n_out / a.size)).astype(np.float32)


def load_audio(path: Path | str) -> tuple[np.ndarray, float]:
    """16 kHz mono float32 samples of an audio (or video) file, and its duration in seconds.

    WAV/FLAC/OGG go through libsndfile; anything else (mp3, m4a, video) through FFmpeg's
    libraries (PyAV, which faster-whisper already needs). Unreadable files raise
    :class:`AudioFileError` with the reason.
    """
    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"no such audio file: {p}")
    if not os.access(p, os.R_OK):
        raise AudioFileError(f"cannot read {p}: permission denied")
    if p.stat().st_size == 0:
        raise AudioFileError(f"{p} is empty (0 bytes): nothing to transcribe")
    import soundfile as sf

    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=False)
        audio = resample(data, int(rate))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as first:
        try:
            from faster_whisper.audio import decode_audio

            audio = np.asarray(decode_audio(str(p), sampling_rate=SAMPLE_RATE), dtype=np.float32)
        except Exception as exc:  # PyAV raises its own error tree for every container/codec fault
            raise AudioFileError(
                f"cannot read {p} as audio: {_reason(first)}; FFmpeg: {_reason(exc)}") from exc
    return audio, audio.size / SAMPLE_RATE


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:200] if text else type(exc).__name__


def write_wav(path: Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write 16-bit PCM WAV and fsync it, so a saved note's audio survives a crash."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        sf.write(fh, np.clip(to_mono(audio), -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
