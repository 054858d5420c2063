"""Turning a meeting folder into memory: transcribe its segments, save transcript and minutes.

Used by the recorder when it stops and by recovery after a crash; both meet here so an
interrupted meeting ends up exactly like one that was stopped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from deskmind.core.errors import DeskmindError
from deskmind.core.memory.models import NewChunk, SourceDraft
from deskmind.core.speech.audio import AudioFileError, load_audio
from deskmind.core.speech.engine import Segment, TranscriptionEngine
from deskmind.core.speech.minutes import UNUSABLE, Complete, Minutes, make_minutes
from deskmind.core.speech.segments import MeetingFolder, SegmentInfo, write_json_atomic
from deskmind.core.speech.settings import SpeechSettings
from deskmind.core.speech.storage import meeting_draft

log = logging.getLogger(__name__)


@dataclass
class MeetingResult:
    meeting_id: str
    source_id: int | None
    minutes_id: int | None
    segments: list[Segment]
    duration: float
    audio_files: list[str]
    minutes: Minutes | None = None
    warnings: list[str] = field(default_factory=list)
    recovered: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"meeting_id": self.meeting_id, "source_id": self.source_id,
                "minutes_id": self.minutes_id, "duration": round(self.duration, 2),
                "segments": [s.to_dict() for s in self.segments], "audio_files": self.audio_files,
                "minutes": self.minutes.to_dict() if self.minutes else None,
                "warnings": self.warnings, "recovered": self.recovered}


def transcribe_segment(engine: TranscriptionEngine, folder: MeetingFolder, seg: SegmentInfo,
                       on_segment: Callable[[Segment], None] | None = None) -> list[Segment]:
    """Transcribe one segment file and keep its transcript beside it. Whisper thread."""
    path = folder.path / seg.file
    try:
        audio, duration = load_audio(path)
    except AudioFileError as exc:
        folder.warn(f"segment {seg.file} could not be read and was skipped: {exc}")
        return []
    seg.frames = max(seg.frames, int(round(duration * seg.rate)))
    result = engine.transcribe(audio, on_segment=on_segment, channel=seg.channel, offset=seg.start)
    out = result.segments
    try:
        write_json_atomic(folder.transcript_path(seg), [s.to_dict() for s in out])
        seg.transcribed = True
        folder.put_segment(seg)
    except OSError as exc:  # full disk: the transcript still reaches memory at the end
        log.warning("segment transcript %s not written: %s", seg.file, exc)
    return out


def _segment_transcript(folder: MeetingFolder, seg: SegmentInfo) -> list[Segment] | None:
    p = folder.transcript_path(seg)
    if not seg.transcribed or not p.exists():
        return None
    try:
        return [Segment(**row) for row in json.loads(p.read_text(encoding="utf-8"))]
    except (OSError, json.JSONDecodeError, TypeError):
        return None


def _unlisted_segments(folder: MeetingFolder, listed: list[SegmentInfo]) -> list[SegmentInfo]:
    """WAV files a killed recorder created but never entered in the manifest."""
    names = {s.file for s in listed}
    out = []
    for p in sorted(folder.path.glob("*-*.wav")):
        if p.name in names:
            continue
        channel, _, idx = p.stem.rpartition("-")
        prev = [s for s in listed if s.channel == channel]
        start = max((s.start + s.duration for s in prev), default=0.0)
        rate = prev[-1].rate if prev else 16000
        out.append(SegmentInfo(channel, int(idx) if idx.isdigit() else 0, p.name, start, rate))
    return out


def finish_meeting(folder: MeetingFolder, engine: TranscriptionEngine,
                   remember: Callable[[SourceDraft], int], *, complete: Complete | None,
                   settings: SpeechSettings, on_segment: Callable[[Segment], None] | None = None,
                   recovered: bool = False) -> MeetingResult:
    """Transcribe what is left, save the transcript (kind "meeting") and the minutes (a derived
    source) and mark the folder saved. Blocking; call from any thread but the Whisper one."""
    segs = folder.segments()
    segs += _unlisted_segments(folder, segs)
    all_segments: list[Segment] = []
    for seg in segs:
        done = _segment_transcript(folder, seg)
        if done is None:
            done = engine.submit_call(transcribe_segment, engine, folder, seg, on_segment).result()
        all_segments.extend(done)
    all_segments.sort(key=lambda s: (s.start, s.channel or ""))
    duration = max((s.start + max(s.duration, 0.0) for s in segs), default=0.0)
    duration = max([duration] + [s.end for s in all_segments])
    warnings = list(folder.data.get("warnings", []))
    if recovered:
        last = max((s.start + s.duration for s in segs), default=0.0)
        warnings.append(f"recovered after the recorder stopped unexpectedly: audio up to "
                        f"{last:.0f} s was kept; anything after the last flush was lost")
    if not all_segments:
        warnings.append("no speech was heard in this meeting")
    audio_files = sorted(str(folder.path / s.file) for s in segs if (folder.path / s.file).exists())
    data = folder.data
    draft = meeting_draft(folder.id, all_segments, title=str(data.get("title") or "Meeting"),
                          started_at=float(data.get("started_at") or time.time()), duration=duration,
                          audio_files=audio_files, privacy=settings.meeting_privacy,
                          extra={"audio_folder": str(folder.path), "warnings": warnings,
                                 "channels": data.get("channels", {})})
    source_id = remember(draft)
    minutes = None
    minutes_id = None
    if complete is None:
        warnings.append("no language model is set up for minutes: only the transcript was saved")
    elif all_segments:
        try:
            minutes = make_minutes(all_segments, complete, privacy=settings.meeting_privacy,
                                   max_chars=settings.minutes_chunk_chars)
            if minutes.unusable:  # said where the minutes would be shown; nothing to remember
                warnings.append(f"{UNUSABLE}: {minutes.unusable}; the transcript is saved")
            else:
                minutes_id = remember(minutes_draft(folder.id, source_id, draft.title or "Meeting",
                                                    minutes, settings.meeting_privacy))
        except Exception as exc:  # the model or router failing must not lose the meeting
            log.warning("minutes failed", exc_info=True)
            reason = str(exc) if isinstance(exc, DeskmindError) else f"{type(exc).__name__}: {exc}"
            warnings.append(f"minutes could not be written ({reason}); the transcript is saved")
    folder.update(status="saved", source_id=source_id, minutes_id=minutes_id,
                  saved_at=time.time(), warnings=warnings)
    return MeetingResult(folder.id, source_id, minutes_id, all_segments, duration, audio_files,
                         minutes, warnings, recovered)


def minutes_draft(meeting_id: str, parent_id: int, title: str, minutes: Minutes,
                  privacy: str) -> SourceDraft:
    chunks = []
    for name, text, first in minutes.sections():
        loc: dict[str, Any] = {"section": name}
        if first is not None:
            loc["start"] = first
        chunks.append(NewChunk(text, loc))
    return SourceDraft(uri=f"deskmind://meeting/{meeting_id}/minutes", kind="minutes",
                       title=f"Minutes: {title}", privacy=privacy, parent_id=parent_id,
                       metadata={"meeting_id": meeting_id, "chunks": minutes.chunks,
                                 "model_calls": minutes.model_calls,
                                 "structured": minutes.structured,
                                 "minutes": minutes.to_dict()},
                       text=minutes.to_markdown(), extractor="minutes", chunks=chunks)
