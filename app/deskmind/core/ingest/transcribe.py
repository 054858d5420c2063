"""The hand-off from ingestion to speech: audio and video wait here for a transcriber.

Dropped or indexed media files are stored with status ``queued``. The speech engine registers
a transcriber once at start-up::

    from deskmind.core.ingest.transcribe import TranscriptSegment, set_transcriber
    set_transcriber(lambda path: [TranscriptSegment(0.0, 4.2, "hello"), ...])

From then on, indexing transcribes media directly, and :func:`transcribe_queued` works off
what was queued before. Each chunk's locator carries ``start`` and ``end`` in seconds. With no
transcriber the files simply stay queued, and ``deskmind sources`` says so.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from deskmind.core.ingest.types import Extracted, FileTypes, Section
from deskmind.core.memory import uris
from deskmind.core.memory.models import Source
from deskmind.core.memory.api import Memory

AUDIO_SUFFIXES = [".wav", ".mp3", ".m4a", ".flac", ".ogg", ".oga", ".opus", ".aac", ".wma"]
VIDEO_SUFFIXES = [".webm", ".mp4", ".mkv", ".mov", ".avi", ".m4v"]
SEGMENT_WORDS = 150
NO_TRANSCRIBER = "waiting for transcription: no speech engine is registered yet"


@dataclass
class TranscriptSegment:
    start: float  # seconds from the start of the file
    end: float
    text: str
    speaker: str | None = None


# Called on an ingestion worker thread with the media file's path; returns segments in order
# or raises ExtractionError with a reason for people.
Transcriber = Callable[[Path], Iterable[TranscriptSegment]]

_lock = threading.Lock()
_transcriber: Transcriber | None = None


def set_transcriber(fn: Transcriber | None) -> None:
    """Register (or with None, remove) the transcriber used for audio and video."""
    global _transcriber
    with _lock:
        _transcriber = fn


def get_transcriber() -> Transcriber | None:
    with _lock:
        return _transcriber


def transcript_to_extracted(path: Path, segments: Iterable[TranscriptSegment], engine: str) -> Extracted:
    """Group segments into chunk-sized sections, each located by its start and end second."""
    sections: list[Section] = []
    buf: list[TranscriptSegment] = []
    words = 0

    def flush() -> None:
        if buf:
            text = " ".join(s.text.strip() for s in buf if s.text.strip())
            if text:
                loc: dict[str, Any] = {"start": round(buf[0].start, 2), "end": round(buf[-1].end, 2)}
                speakers = sorted({s.speaker for s in buf if s.speaker})
                if speakers:
                    loc["speakers"] = speakers
                sections.append(Section(text=text, locator=loc))

    for seg in segments:
        n = len(seg.text.split())
        if buf and words + n > SEGMENT_WORDS:
            flush()
            buf, words = [], 0
        buf.append(seg)
        words += n
    flush()
    text = "\n".join(s.text for s in sections)
    return Extracted(title=path.stem, text=text, sections=sections, extractor=f"transcript:{engine}",
                     metadata={"duration_s": sections[-1].locator["end"]} if sections else {},
                     presplit=True)


def transcription_queue(store: Memory) -> list[Source]:
    """Media sources waiting for a transcriber, oldest first."""
    return list(reversed(store.list_sources(status="queued")))


def transcribe_queued(indexer: Any, on_event: Callable[[Any], None] | None = None) -> Any:
    """Transcribe and store every queued media file that still exists; returns an IndexSummary."""
    local = (uris.uri_path(s.uri) for s in transcription_queue(indexer.store))
    paths = [p for p in local if p is not None and os.path.exists(p)]
    return indexer.index(paths, on_event=on_event, remove_missing=False) if paths else None


def media_fingerprint(fd: int, size: int) -> str:
    """A cheap identity for big media: size plus the first and last MiB (not the whole file)."""
    h = hashlib.sha256(str(size).encode())
    h.update(os.pread(fd, 1 << 20, 0))
    if size > 2 << 20:
        h.update(os.pread(fd, 1 << 20, size - (1 << 20)))
    return "media:" + h.hexdigest()


def register_types(types: FileTypes) -> None:
    types.register(AUDIO_SUFFIXES, "audio", None, media=True)
    types.register(VIDEO_SUFFIXES, "video", None, media=True)
