"""Transcription of audio and video files that are indexed or dropped into Deskmind.

Ingestion queues media until a transcriber is registered with
``deskmind.core.ingest.transcribe.set_transcriber``; this module provides one backed by the
speech engine. The lazy variant builds the engine (and loads Whisper) only when a media file
actually arrives, so registering it costs nothing.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

from deskmind.core.speech.audio import AudioFileError, load_audio
from deskmind.core.speech.engine import TranscriptionEngine

log = logging.getLogger(__name__)


def media_transcriber(engine: TranscriptionEngine) -> Callable[[Path], list[Any]]:
    """fn(path) -> [TranscriptSegment]; runs Whisper on the engine's thread, raises
    ExtractionError with a reason for unreadable files. Called on ingestion worker threads."""
    from deskmind.core.ingest.transcribe import TranscriptSegment
    from deskmind.core.ingest.types import ExtractionError

    def transcribe(path: Path) -> list[Any]:
        try:
            audio, _ = load_audio(path)
        except AudioFileError as exc:
            raise ExtractionError(str(exc)) from exc
        result = engine.submit(audio).result()
        return [TranscriptSegment(s.start, s.end, s.text, s.channel) for s in result.segments]

    return transcribe


class LazyMediaTranscriber:
    """A registered transcriber that makes its engine on first use."""

    def __init__(self, make_engine: Callable[[], TranscriptionEngine]) -> None:
        self._make = make_engine
        self._fn: Callable[[Path], list[Any]] | None = None
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> list[Any]:
        with self._lock:
            if self._fn is None:
                self._fn = media_transcriber(self._make())
        return self._fn(path)


def _engine_from_settings() -> TranscriptionEngine:
    from deskmind.core.config.paths import Paths
    from deskmind.core.config.settings import load_settings
    from deskmind.core.speech.settings import speech_settings

    return TranscriptionEngine(speech_settings(load_settings(Paths.from_env().settings_path)))


def install_media_transcriber(engine: TranscriptionEngine | None = None, *, replace: bool = False) -> bool:
    """Register speech as ingestion's transcriber (unless one is registered and not ``replace``).
    Returns whether it registered."""
    try:
        from deskmind.core.ingest import transcribe as hook
    except ImportError:
        return False
    if hook.get_transcriber() is not None and not replace:
        return False
    hook.set_transcriber(media_transcriber(engine) if engine is not None
                         else LazyMediaTranscriber(_engine_from_settings))
    return True
