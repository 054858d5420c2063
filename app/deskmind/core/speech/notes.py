"""Push-to-talk voice notes: record, transcribe, save to memory, then clean up in the background.

The note is saved as transcribed before any language model is asked (key-up to saved does not
wait for one); :mod:`deskmind.core.speech.cleanup` then updates it with the clean-up."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.memory.models import SourceDraft
from deskmind.core.speech.audio import load_audio, resample, write_wav
from deskmind.core.speech.armed_mic import ArmedMicrophone, Take, start_take
from deskmind.core.speech.cleanup import (  # noqa: F401  (re-exported)
    CLEAN_PROMPT, CLEAN_TASK, MIN_WORDS_KEPT, CleanupJob, CleanupOutcome, Complete, NoteCleaner,
    unfaithful_cleanup,
)
from deskmind.core.speech.engine import Segment, Transcript, TranscriptionEngine
from deskmind.core.speech.storage import note_draft

log = logging.getLogger(__name__)

def guarded_clean_up(complete: Complete, task: str, prompt: str, said: str,
                     privacy: str) -> tuple[str | None, list[str]]:
    """(the clean-up of ``said`` when it can stand for it, else None; why it was not used),
    made while the caller waits (dictation types the result).

    ``prompt`` has a ``{text}`` slot. Whatever the model answers, only a faithful edit of what
    was said is ever returned (see :func:`unfaithful_cleanup`); a failure is a reason, never
    an exception, because the words said must not be lost over it."""
    try:
        cleaned = complete(task, prompt.format(text=said), privacy).strip() or None
    except Exception as exc:
        reason = str(exc) if isinstance(exc, DeskmindError) else f"{type(exc).__name__}: {exc}"
        log.warning("clean-up failed (%s)", (reason.splitlines() or [""])[0])
        log.debug("clean-up failure in full", exc_info=True)
        return None, [f"cleanup failed ({reason})"]
    why = unfaithful_cleanup(said, cleaned) if cleaned else None
    if why:
        log.warning("clean-up not used: %s", why)
        return None, [f"the clean-up was not used ({why})"]
    return cleaned, []


Remember = Callable[[SourceDraft], int]


class NoSpeechError(UserInputError):
    """A recording held no words."""


@dataclass
class VoiceNote:
    source_id: int
    text: str
    transcript: Transcript
    audio_path: Path
    cleaned: bool = False
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # The clean-up running in the background after the note was saved (None: not asked for).
    cleanup: "Future[CleanupOutcome] | None" = None

    def wait_for_cleanup(self, timeout: float | None = None) -> CleanupOutcome | None:
        """Block until the background clean-up is done and take its outcome into this note."""
        if self.cleanup is None:
            return None
        out = self.cleanup.result(timeout)
        self.timings["cleanup"] = out.seconds
        if out.cleaned:
            self.text, self.cleaned = out.cleaned, True
        elif out.reason and out.status != "off":
            self.warnings.append(f"note kept as transcribed: {out.reason}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"source_id": self.source_id, "text": self.text, "audio": str(self.audio_path),
                "cleaned": self.cleaned, "warnings": self.warnings,
                "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
                **{k: v for k, v in self.transcript.to_dict().items() if k != "text"}}


class NoteSaver:
    """Turns a transcript into a stored note (core.remember), then hands it to the cleaner."""

    def __init__(self, engine: TranscriptionEngine, remember: Remember, audio_dir: Path, *,
                 cleaner: NoteCleaner | None = None, privacy: str = "private",
                 warm_up: Callable[[], Any] | None = None) -> None:
        self.engine = engine
        self._warm_up = warm_up
        self.remember = remember
        self.audio_dir = audio_dir
        self.cleaner = cleaner
        self.privacy = privacy

    def preload(self) -> None:
        """Get Whisper and the embedder ready while the person is still talking."""
        self.engine.preload()
        if self._warm_up is not None:
            # Not a daemon: it runs native loaders (onnxruntime), and an interpreter that
            # finalises under them crashes (Enter pressed at once, Ctrl-C): exit waits for it.
            threading.Thread(target=self._warm_up, name="note-warm-up").start()

    def note_path(self, note_id: str) -> Path:
        return self.audio_dir / "notes" / f"{note_id}.wav"

    def save(self, note_id: str, transcript: Transcript, audio_path: Path, *,
             recorded_at: float, origin: str | None = None,
             timings: dict[str, float] | None = None, cleaned: str | None = None) -> VoiceNote:
        """Store the note as transcribed; a clean-up (when there is a cleaner) follows in the
        background and updates it (``VoiceNote.cleanup``). ``cleaned`` is a clean-up already
        made and checked (dictation): it is stored with the note and no other follows."""
        timings = dict(timings or {})
        if not transcript.segments:
            audio_path.unlink(missing_ok=True)
            raise NoSpeechError(f"no speech was heard in the {transcript.duration:.1f} s recording; "
                                "nothing was saved")
        t = time.perf_counter()
        draft = note_draft(note_id, transcript, audio_path, privacy=self.privacy, cleaned=cleaned,
                           recorded_at=recorded_at, origin=origin)
        later = cleaned is None and self.cleaner is not None
        draft.metadata["cleanup"] = "cleaned" if cleaned is not None else "pending" if later else "off"
        source_id = self.remember(draft)
        timings["save"] = time.perf_counter() - t
        note = VoiceNote(source_id, draft.text, transcript, audio_path, cleaned is not None, [], timings)
        if later:
            note.cleanup = self.cleaner.submit(CleanupJob(source_id, note_id, transcript, audio_path,
                                                          recorded_at, origin))
        return note

    def from_file(self, path: Path | str, *, on_segment: Callable[[Segment], None] | None = None) -> VoiceNote:
        """A note from an existing recording; a copy of the audio is kept with the note."""
        src = Path(path)
        audio, _ = load_audio(src)
        note_id = str(uuid.uuid4())
        dest = self.note_path(note_id).with_suffix(src.suffix.lower() or ".wav")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        try:
            transcript = self.engine.submit(audio, on_segment=on_segment).result()
            return self.save(note_id, transcript, dest, recorded_at=src.stat().st_mtime,
                             origin=str(src.resolve()))
        except BaseException:
            dest.unlink(missing_ok=True)
            raise


class VoiceNoteRecorder:
    """start() opens the microphone; stop() transcribes and saves. Any thread may call them;
    stop() blocks until the note is saved (the desktop calls it off the GUI thread)."""

    def __init__(self, saver: NoteSaver, sd: Any, *, device: str | int | None = None,
                 armed: Callable[[], ArmedMicrophone | None] = lambda: None,
                 on_segment: Callable[[Segment], None] | None = None,
                 on_error: Callable[[DeskmindError], None] | None = None,
                 on_level: Callable[[float], None] | None = None) -> None:
        self.saver = saver
        self._sd = sd
        self.device = device
        self.on_segment = on_segment
        self.on_error = on_error
        self.on_level = on_level
        self.armed = armed
        self._blocks: list[np.ndarray] = []
        self._capture: Take | None = None
        self._lock = threading.Lock()
        self._started_wall = 0.0

    @property
    def recording(self) -> bool:
        return self._capture is not None

    @property
    def error(self) -> DeskmindError | None:
        return self._capture.error if self._capture else None

    def _on_block(self, block: np.ndarray) -> None:  # consumer thread
        self._blocks.append(block)
        if self.on_level is not None:
            self.on_level(float(np.sqrt(np.mean(block * block))) if block.size else 0.0)

    def start(self, pressed_at: float | None = None) -> None:
        """Open the microphone, or start from the armed one's pre-roll; ``pressed_at`` is the
        monotonic time the talk key went down (the pre-roll is kept from just before it)."""
        with self._lock:
            if self._capture is not None:
                raise UserInputError("a voice note is already being recorded")
            self._blocks = []
            cap = start_take(self._sd, self.device, self.armed(), self._on_block, self.on_error,
                             since=pressed_at)
            if cap.pre.size:  # before any live block, which may already have arrived
                self._blocks.insert(0, cap.pre)
            self._capture = cap
            self._started_wall = time.time()
        self.saver.preload()

    def cancel(self) -> None:
        with self._lock:
            cap, self._capture = self._capture, None
        if cap is not None:
            cap.stop()
        self._blocks = []

    def stop(self) -> VoiceNote:
        """Stop recording, transcribe, save (the clean-up follows in the background). Blocking."""
        t0 = time.perf_counter()
        with self._lock:
            cap, self._capture = self._capture, None
        if cap is None:
            raise UserInputError("no voice note is being recorded")
        cap.stop()
        blocks, self._blocks = self._blocks, []
        raw = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        warnings = [str(cap.error)] if cap.error else []
        if raw.size == 0:
            raise NoSpeechError(f"nothing was recorded: the microphone '{cap.device_name}' delivered "
                                "no audio (is it muted or suspended in the sound settings?)"
                                + (f"; {cap.error}" if cap.error else ""))
        timings = {"capture_stop": time.perf_counter() - t0}
        t = time.perf_counter()
        audio = resample(raw, cap.rate)
        note_id = str(uuid.uuid4())
        path = write_wav(self.saver.note_path(note_id), raw, cap.rate)
        timings["write_audio"] = time.perf_counter() - t
        t = time.perf_counter()
        try:
            transcript = self.saver.engine.submit(audio, on_segment=self.on_segment).result()
            timings["transcribe"] = time.perf_counter() - t
            note = self.saver.save(note_id, transcript, path, recorded_at=self._started_wall,
                                   timings=timings)
        except NoSpeechError:
            raise
        except DeskmindError as exc:
            # The recording is the only copy of what was said: keep it and say where.
            msg = f"{exc} (the recording is kept at {path})"
            try:
                kept = type(exc)(msg)
            except TypeError:  # a subclass with its own constructor
                kept = DeskmindError(msg)
            raise kept from exc
        note.warnings[:0] = warnings
        note.timings["total"] = time.perf_counter() - t0
        return note
