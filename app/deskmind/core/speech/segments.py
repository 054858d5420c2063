"""A meeting on disk: a folder of short WAV segments per channel and a manifest.

Segments are written as they arrive; the open one is flushed and fsynced every
``flush_interval_s`` (the stdlib ``wave`` writer rewrites the header after every block, so a
segment is a valid WAV up to its last flush), and closed after ``meeting_segment_s`` at the next pause
(at twice that length without one). A crash or kill loses at most the last flush interval. The manifest is
replaced atomically (write, fsync, rename, fsync the folder).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deskmind.core.errors import StorageError
from deskmind.core.memory.db import fsync_dir

log = logging.getLogger(__name__)

MANIFEST = "meeting.json"
QUIET_RMS = 0.01
QUIET_RUN_S = 0.3


class DiskFullError(StorageError):
    """The disk holding meeting audio is full (or failing)."""



def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


@dataclass
class SegmentInfo:
    channel: str
    index: int
    file: str
    start: float          # seconds from the meeting start
    rate: int
    frames: int = 0
    closed: bool = False
    transcribed: bool = False

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.rate else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "index": self.index, "file": self.file,
                "start": round(self.start, 3), "rate": self.rate, "frames": self.frames,
                "closed": self.closed, "transcribed": self.transcribed}


class MeetingFolder:
    """The manifest and files of one meeting. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self.data: dict[str, Any] = {}

    @classmethod
    def create(cls, root: Path, meeting_id: str, **fields: Any) -> "MeetingFolder":
        path = root / meeting_id
        path.mkdir(parents=True, exist_ok=False)
        f = cls(path)
        f.data = {"id": meeting_id, "status": "recording", "started_at": time.time(),
                  "pid": os.getpid(), "channels": {}, "segments": [], "warnings": [], **fields}
        f.save()
        return f

    @classmethod
    def open(cls, path: Path) -> "MeetingFolder":
        f = cls(path)
        try:
            f.data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StorageError(f"meeting folder {path} has no readable manifest: {exc}") from exc
        return f

    @property
    def id(self) -> str:
        return str(self.data["id"])

    def save(self) -> None:
        with self._lock:
            write_json_atomic(self.path / MANIFEST, self.data)

    def try_save(self) -> bool:
        """Save, but on a full disk keep going with the last manifest on disk."""
        try:
            self.save()
            return True
        except OSError as exc:
            log.warning("meeting manifest not updated: %s", exc)
            return False

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.data.update(fields)
            self.try_save()

    def warn(self, text: str) -> None:
        with self._lock:
            if text not in self.data["warnings"]:
                self.data["warnings"].append(text)
            self.try_save()

    def put_segment(self, seg: SegmentInfo) -> None:
        with self._lock:
            rows = self.data["segments"]
            for i, row in enumerate(rows):
                if row["file"] == seg.file:
                    rows[i] = seg.to_dict()
                    break
            else:
                rows.append(seg.to_dict())
            self.try_save()

    def segments(self) -> list[SegmentInfo]:
        """Every segment the manifest lists, by channel and order."""
        with self._lock:
            out = [SegmentInfo(**row) for row in self.data.get("segments", [])]
        return sorted(out, key=lambda s: (s.channel, s.index))

    def transcript_path(self, seg: SegmentInfo) -> Path:
        return self.path / (Path(seg.file).stem + ".json")


class SegmentWriter:
    """Writes one channel's blocks into segment files. Called on that channel's consumer thread."""

    def __init__(self, folder: MeetingFolder, channel: str, rate: int, *, segment_s: float,
                 flush_s: float, offset_s: float, on_closed: Callable[[SegmentInfo], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = folder
        self.channel = channel
        self.rate = rate
        self.segment_s = segment_s
        self.flush_s = flush_s
        self.offset_s = offset_s
        self.on_closed = on_closed
        self._clock = clock
        self._index = 0
        self._total_frames = 0
        self._fh: Any = None
        self._wav: wave.Wave_write | None = None
        self._seg: SegmentInfo | None = None
        self._last_flush = 0.0
        self._quiet_s = 0.0

    @property
    def seconds(self) -> float:
        return self._total_frames / self.rate

    def _open(self) -> None:
        self._index += 1
        name = f"{self.channel}-{self._index:04d}.wav"
        self._seg = SegmentInfo(self.channel, self._index, name,
                                self.offset_s + self._total_frames / self.rate, self.rate)
        self._fh = open(self.folder.path / name, "wb")
        self._wav = wave.open(self._fh, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(self.rate)
        self._last_flush = self._clock()
        self.folder.put_segment(self._seg)

    def write(self, block: np.ndarray) -> None:
        try:
            if self._wav is None:
                self._open()
            assert self._wav is not None and self._seg is not None
            pcm = (np.clip(block, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            self._wav.writeframes(pcm)
            self._seg.frames += block.shape[0]
            self._total_frames += block.shape[0]
            if self._clock() - self._last_flush >= self.flush_s:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._last_flush = self._clock()
        except OSError as exc:
            self._abandon()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
                raise DiskFullError(
                    f"the disk holding {self.folder.path} is full ({exc.strerror}): recording "
                    f"stopped at {self.seconds:.0f} s; everything written until then is kept") from exc
            raise DiskFullError(f"cannot write meeting audio in {self.folder.path}: {exc}") from exc
        quiet = float(np.sqrt(np.mean(block * block))) < QUIET_RMS if block.size else True
        self._quiet_s = self._quiet_s + block.shape[0] / self.rate if quiet else 0.0
        # Cut in a pause between sentences (gaps between words are shorter), so Whisper
        # rarely sees half a word; if nobody pauses, cut anyway at twice the length.
        if self._seg.duration >= self.segment_s and (
                self._quiet_s >= QUIET_RUN_S or self._seg.duration >= 2 * self.segment_s):
            self.close()

    def _abandon(self) -> None:
        """After a write error: keep the file as it is (its header matches what got written)."""
        seg, self._seg = self._seg, None
        wav, self._wav = self._wav, None
        fh, self._fh = self._fh, None
        for closer in (getattr(wav, "close", None), getattr(fh, "close", None)):
            try:
                if closer:
                    closer()
            except (OSError, wave.Error) as exc:
                log.debug("closing a segment after a write error: %s", exc)
        if seg is not None and seg.frames:
            seg.closed = True
            self.folder.put_segment(seg)
            self.on_closed(seg)

    def close(self) -> None:
        """Close the open segment (if any) and hand it on for transcription."""
        seg, wav, fh = self._seg, self._wav, self._fh
        if seg is None or wav is None:
            return
        self._seg, self._wav, self._fh = None, None, None
        try:
            wav.close()
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        except OSError as exc:
            log.warning("closing %s: %s", seg.file, exc)
        if seg.frames == 0:
            (self.folder.path / seg.file).unlink(missing_ok=True)
            with self.folder._lock:
                self.folder.data["segments"] = [r for r in self.folder.data["segments"]
                                                if r["file"] != seg.file]
                self.folder.try_save()
            return
        seg.closed = True
        self.folder.put_segment(seg)
        self.on_closed(seg)
