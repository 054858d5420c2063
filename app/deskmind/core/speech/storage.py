"""How speech lands in memory: voice notes, meeting transcripts and minutes as sources.

Every audio file Deskmind records lives under ``paths.audio_dir``; a source lists its files in
``metadata["audio_files"]`` so that forgetting it (see :func:`made_files_remover`) deletes them.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from deskmind.core.memory.models import NewChunk, Source, SourceDraft
from deskmind.core.speech.engine import Segment, Transcript

log = logging.getLogger(__name__)

MEETING_CHUNK_CHARS = 700


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def parse_clock(text: str) -> float | None:
    parts = text.strip().strip("[]").split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        return None
    if not 2 <= len(nums) <= 3:
        return None
    total = 0.0
    for n in nums:
        total = total * 60 + n
    return total


def _title_from(text: str, fallback: str) -> str:
    words = text.split()
    if not words:
        return fallback
    title = " ".join(words[:8])
    return title + ("…" if len(words) > 8 else "")


def note_draft(note_id: str, transcript: Transcript, audio_path: Path, *, privacy: str,
               cleaned: str | None = None, recorded_at: float | None = None,
               origin: str | None = None) -> SourceDraft:
    """A voice note: one chunk per Whisper segment (locator start/end in seconds), plus the
    cleaned-up text as its own chunk when a note cleaner rewrote it."""
    when = recorded_at or time.time()
    chunks = [NewChunk(s.text, {"start": s.start, "end": s.end}) for s in transcript.segments]
    if cleaned and cleaned.strip() != transcript.text.strip():
        chunks.append(NewChunk(cleaned.strip(), {"start": 0.0, "end": round(transcript.duration, 2),
                                                 "cleaned": True}))
    text = cleaned.strip() if cleaned else transcript.text
    meta: dict[str, Any] = {
        "audio_files": [str(audio_path)], "duration": round(transcript.duration, 2),
        "recorded_at": when, "transcript": transcript.text,
        "segments": [s.to_dict() for s in transcript.segments], "cleaned": bool(cleaned),
        "machine": socket.gethostname(),   # memory may be synced or restored elsewhere
    }
    if origin:
        meta["origin"] = origin
    return SourceDraft(
        uri=f"deskmind://note/{note_id}", kind="note",
        title=_title_from(text, time.strftime("Voice note %Y-%m-%d %H:%M", time.localtime(when))),
        size=audio_path.stat().st_size if audio_path.exists() else None, mtime=when,
        privacy=privacy, metadata=meta, text=text, extractor="whisper", chunks=chunks)


def transcript_lines(segments: Iterable[Segment]) -> list[str]:
    return [f"[{clock(s.start)}] {s.channel + ': ' if s.channel else ''}{s.text}" for s in segments]


def meeting_draft(meeting_id: str, segments: list[Segment], *, title: str, started_at: float,
                  duration: float, audio_files: list[str], privacy: str,
                  extra: dict[str, Any] | None = None) -> SourceDraft:
    """The meeting transcript: chunks of consecutive turns, each with its start/end times and
    who spoke ("me" = the microphone, "others" = the computer's sound)."""
    chunks: list[NewChunk] = []
    group: list[Segment] = []

    def flush() -> None:
        if group:
            chunks.append(NewChunk("\n".join(transcript_lines(group)), {
                "start": group[0].start, "end": max(s.end for s in group),
                "speakers": sorted({s.channel for s in group if s.channel})}))
            group.clear()

    size = 0
    for seg in segments:
        line = len(seg.text) + 16
        if group and size + line > MEETING_CHUNK_CHARS:
            flush()
            size = 0
        group.append(seg)
        size += line
    flush()
    meta: dict[str, Any] = {"audio_files": audio_files, "duration": round(duration, 2),
                            "started_at": started_at, "meeting_id": meeting_id,
                            "segments": len(segments), "machine": socket.gethostname()}
    meta.update(extra or {})
    return SourceDraft(
        uri=f"deskmind://meeting/{meeting_id}", kind="meeting", title=title, mtime=started_at,
        privacy=privacy, metadata=meta, text="\n".join(transcript_lines(segments)),
        extractor="whisper", chunks=chunks)


def made_files_remover(audio_dir: Path) -> Callable[[Source], list[str]]:
    """For ``store.forget(remove_files=...)``: delete the audio Deskmind recorded for a source.

    Only paths inside ``audio_dir`` are touched; a person's own files never are.
    """
    root = audio_dir.resolve()

    def remove(src: Source) -> list[str]:
        removed: list[str] = []
        folders: set[Path] = set()
        for name in (src.metadata or {}).get("audio_files", []) or []:
            p = Path(name).resolve()
            if root not in p.parents:
                continue
            try:
                p.unlink()
                removed.append(str(p))
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not delete %s: %s", p, exc)
        # A meeting's own folder (manifest, segment transcripts) goes too; never a shared one.
        folder = (src.metadata or {}).get("audio_folder")
        if folder:
            fp = Path(folder).resolve()
            if root in fp.parents and fp.parent != root and fp.name != "notes":
                folders.add(fp)
        for f in folders:
            if f.exists():
                shutil.rmtree(f, ignore_errors=True)
                removed.append(str(f))
        return removed

    return remove
