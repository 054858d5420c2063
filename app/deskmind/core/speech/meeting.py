"""The meeting recorder: microphone ("me") and system audio ("others") to disk, live
transcription of finished segments, then transcript and minutes into memory.

Crash safety comes from :mod:`segments`; :func:`find_interrupted` and :func:`finish_meeting`
turn a folder left by a killed recorder into a saved meeting.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.speech.capture import AudioCapture, MicrophoneError
from deskmind.core.speech.engine import Segment, TranscriptionEngine
from deskmind.core.speech.segments import MeetingFolder, SegmentInfo, SegmentWriter
from deskmind.core.speech.settings import SpeechSettings
from deskmind.core.speech.transcribe_meeting import MeetingResult, finish_meeting, transcribe_segment

log = logging.getLogger(__name__)

Complete = Callable[[str, str, str], str]


def default_monitor_source() -> str | None:
    """The monitor source of the default sink (PulseAudio or PipeWire's pulse server)."""
    if not sys.platform.startswith("linux") or shutil.which("pactl") is None:
        return None
    try:
        out = subprocess.run(["pactl", "get-default-sink"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{out}.monitor" if out else None


def pulse_source_missing(name: str) -> bool:
    """True when the sound server is reachable and has no source called ``name``.

    Opening a source that does not exist through ALSA's pulse plugin can block forever in
    PortAudio, so a named system source is checked first."""
    if shutil.which("pactl") is None:
        return False
    try:
        out = subprocess.run(["pactl", "list", "short", "sources"], capture_output=True,
                             text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return name not in {ln.split("\t")[1] for ln in out.splitlines() if ln.count("\t") >= 1}


class MeetingRecorder:
    """start() begins recording into ``meetings_dir/<id>``; stop() finishes and saves it.

    Hooks run on capture or Whisper threads: ``on_segment(Segment)`` for every transcribed
    turn, ``on_error(DeskmindError)`` when recording had to stop by itself (disk full,
    microphone gone); after such an error, call stop() to save what was recorded.
    """

    def __init__(self, engine: TranscriptionEngine, remember: Callable[[Any], int],
                 meetings_dir: Path, sd: Any, settings: SpeechSettings, *,
                 complete: Complete | None = None,
                 system_source: Callable[[], str | None] | None = default_monitor_source,
                 on_segment: Callable[[Segment], None] | None = None,
                 on_error: Callable[[DeskmindError], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.remember = remember
        self.meetings_dir = meetings_dir
        self._sd = sd
        self.settings = settings
        self.complete = complete
        self._system_source = system_source
        self.on_segment = on_segment
        self.on_error = on_error
        self._clock = clock
        self.folder: MeetingFolder | None = None
        self._captures: dict[str, AudioCapture] = {}
        self._writers: dict[str, SegmentWriter] = {}
        self._pending: list[Future] = []
        self._lock = threading.Lock()
        self._t0 = 0.0
        self.stopped_by_error = threading.Event()
        self.error: DeskmindError | None = None
        self._interrupted = False

    # -- start --------------------------------------------------------------------------

    def start(self, title: str | None = None) -> str:
        if self.folder is not None:
            raise UserInputError("a meeting is already being recorded")
        s = self.settings
        meeting_id = str(uuid.uuid4())
        self.meetings_dir.mkdir(parents=True, exist_ok=True)
        folder = MeetingFolder.create(
            self.meetings_dir, meeting_id,
            title=title or time.strftime("Meeting %Y-%m-%d %H:%M"), segment_s=s.meeting_segment_s)
        self.folder = folder
        self._t0 = self._clock()
        self.engine.preload()  # live transcription should not wait for the model later
        channels: list[tuple[str, str | int | None, str | None]] = [("me", s.input_device, None)]
        if s.system_audio and s.system_device:
            channels.append(("others", s.system_device, None))
        elif s.system_audio:
            src = s.system_source or (self._system_source() if self._system_source else None)
            if src and pulse_source_missing(src):
                folder.warn(f"system audio is not recorded: the sound server has no source "
                            f"'{src}' (check [speech] system_source; 'pactl list short sources' "
                            "lists them): only the microphone is")
            elif src:
                channels.append(("others", None, src))
            else:
                folder.warn("system audio is not recorded here (no PulseAudio/PipeWire monitor "
                            "source found; elsewhere set [speech] system_device to a loopback "
                            "input): only the microphone is")
        try:
            for name, device, pulse_source in channels:
                cap = AudioCapture(self._sd, on_block=self._block_hook(name),
                                   on_error=self._failure_hook(name), device=device,
                                   pulse_source=pulse_source,
                                   name="microphone" if name == "me" else "system audio")
                try:
                    cap.start()
                except DeskmindError as exc:
                    if name == "me":
                        raise
                    folder.warn(f"system audio is not recorded: {exc}")
                    continue
                self._captures[name] = cap
        except BaseException:
            self._stop_captures()
            shutil.rmtree(folder.path, ignore_errors=True)
            self.folder = None
            raise
        folder.update(channels={n: {"device": c.device_name, "rate": c.rate}
                                for n, c in self._captures.items()})
        log.info("meeting %s recording: %s", meeting_id, ", ".join(self._captures))
        return meeting_id

    def _block_hook(self, channel: str) -> Callable[[Any], None]:
        def on_block(block: Any) -> None:  # that channel's consumer thread
            w = self._writers.get(channel)
            if w is None:
                cap = self._captures.get(channel)
                rate = cap.rate if cap else 16000
                assert self.folder is not None
                w = SegmentWriter(self.folder, channel, rate, segment_s=self.settings.meeting_segment_s,
                                  flush_s=self.settings.flush_interval_s,
                                  offset_s=max(0.0, self._clock() - self._t0),
                                  on_closed=self._segment_closed, clock=self._clock)
                self._writers[channel] = w
            w.write(block)
        return on_block

    def _segment_closed(self, seg: SegmentInfo) -> None:
        """Live transcription: queue the finished segment on the Whisper thread."""
        assert self.folder is not None
        if self._interrupted:  # recovery transcribes it later
            return
        fut = self.engine.submit_call(transcribe_segment, self.engine, self.folder, seg,
                                      self.on_segment)
        with self._lock:
            self._pending.append(fut)

    def _failure_hook(self, channel: str) -> Callable[[DeskmindError], None]:
        def failed(exc: DeskmindError) -> None:
            if channel == "others" and isinstance(exc, MicrophoneError):
                # Losing the computer's sound is no reason to stop recording the person.
                if self.folder is not None:
                    self.folder.warn(f"system audio stopped; the microphone is still recorded: {exc}")
                return
            self._capture_failed(exc)
        return failed

    def _capture_failed(self, exc: DeskmindError) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
        if self.folder is not None:
            self.folder.warn(str(exc))
        self.stopped_by_error.set()
        if self.on_error is not None:
            self.on_error(exc)

    # -- status and stop ----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        if self.folder is None:
            return {"recording": False}
        segs = self.folder.segments()
        return {"recording": not self.stopped_by_error.is_set(), "id": self.folder.id,
                "seconds": round(self._clock() - self._t0, 1),
                "channels": {n: round(w.seconds, 1) for n, w in self._writers.items()},
                "segments": len(segs), "transcribed": sum(1 for s in segs if s.transcribed),
                "warnings": list(self.folder.data["warnings"])}

    def _stop_captures(self) -> None:
        for cap in self._captures.values():
            cap.stop()

    def _close_writers(self, folder: MeetingFolder) -> None:
        """Write out every open segment (each is then transcribed, unless interrupted)."""
        for w in self._writers.values():
            try:
                w.close()
            except DeskmindError as exc:
                folder.warn(str(exc))

    def stop(self) -> MeetingResult:
        """Stop recording, transcribe the tail, save transcript and minutes. Blocking."""
        if self.folder is None:
            raise UserInputError("no meeting is being recorded")
        folder = self.folder
        folder.update(status="stopping")
        self._stop_captures()
        self._close_writers(folder)
        with self._lock:
            pending = list(self._pending)
        for fut in pending:
            try:
                fut.result()
            except Exception as exc:  # that segment is transcribed again when the meeting is saved
                log.warning("live transcription of a segment failed: %s", exc)
        result = finish_meeting(folder, self.engine, self.remember, complete=self.complete,
                                settings=self.settings, on_segment=self.on_segment)
        self.folder = None
        return result


    def interrupt(self) -> MeetingFolder | None:
        """Quitting mid-meeting: stop recording and leave the meeting to be recovered.

        The microphone closes, every open segment is written out complete and the folder is
        marked ``interrupted``; nothing waits for Whisper (queued transcriptions are dropped),
        so this takes milliseconds. The next start offers to transcribe and save it, as after
        a crash. Blocking (file writes): call it from a worker thread.
        """
        folder = self.folder
        if folder is None:
            return None
        self._interrupted = True
        self._stop_captures()
        self._close_writers(folder)
        with self._lock:
            pending, self._pending = list(self._pending), []
        for fut in pending:
            fut.cancel()  # one already running finishes on the Whisper thread
        folder.update(status="interrupted")
        self.folder = None
        log.info("meeting %s interrupted: it can be recovered", folder.id)
        return folder


def find_interrupted(meetings_dir: Path, pid_alive: Callable[[int], bool] | None = None) -> list[MeetingFolder]:
    """Meetings whose recorder died, or was interrupted by quitting, before saving them
    (oldest first)."""
    alive = pid_alive or _pid_alive
    found = []
    if not meetings_dir.is_dir():
        return found
    for child in sorted(meetings_dir.iterdir()):
        if not (child / "meeting.json").exists():
            continue
        try:
            f = MeetingFolder.open(child)
        except DeskmindError as exc:
            log.warning("%s", exc)
            continue
        status = f.data.get("status")
        if status == "interrupted" or (status in ("recording", "stopping")
                                       and not alive(int(f.data.get("pid", 0)))):
            found.append(f)
    return sorted(found, key=lambda f: f.data.get("started_at", 0))


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():  # a zombie has exited: its meeting is not being recorded any more
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True
