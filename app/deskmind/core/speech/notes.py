"""Push-to-talk voice notes: record, transcribe, optionally clean up, save to memory."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.memory.models import SourceDraft
from deskmind.core.memory.search import content_words
from deskmind.core.speech.audio import load_audio, resample, write_wav
from deskmind.core.speech.armed_mic import ArmedMicrophone, Take, start_take
from deskmind.core.speech.engine import Segment, Transcript, TranscriptionEngine
from deskmind.core.speech.storage import note_draft

log = logging.getLogger(__name__)

CLEAN_TASK = "clean-note"
CLEAN_PROMPT = (
    "Clean up this dictated note: fix punctuation and obvious mistranscriptions, remove filler "
    "words and false starts, keep the meaning and the speaker's words. Answer with the note only.\n\n"
    "{text}")

# A clean-up may drop fillers and fix a misheard word; one that loses more of what was said, or
# says much more, is not a clean-up (a model too small for the task, or one that answered
# instead of editing) and is not used: the note stays as transcribed.
MIN_WORDS_KEPT = 0.6


def unfaithful_cleanup(said: str, cleaned: str) -> str | None:
    """Why a clean-up of ``said`` cannot stand for the note, or None when it can."""
    words = set(content_words(said))
    if not words:
        return None
    kept = len(words & set(content_words(cleaned))) / len(words)
    if kept < MIN_WORDS_KEPT:
        return f"it kept {kept:.0%} of the words said"
    if len(cleaned) > 2 * len(said) + 80:
        return f"it was {len(cleaned)} characters for {len(said)} said"
    return None


Complete = Callable[[str, str, str], str]


def guarded_clean_up(complete: Complete, task: str, prompt: str, said: str,
                     privacy: str) -> tuple[str | None, list[str]]:
    """(the clean-up of ``said`` when it can stand for it, else None; why it was not used).

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

    def to_dict(self) -> dict[str, Any]:
        return {"source_id": self.source_id, "text": self.text, "audio": str(self.audio_path),
                "cleaned": self.cleaned, "warnings": self.warnings,
                "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
                **{k: v for k, v in self.transcript.to_dict().items() if k != "text"}}


class NoteSaver:
    """Turns a transcript into a stored note: cleanup (optional) and core.remember."""

    def __init__(self, engine: TranscriptionEngine, remember: Remember, audio_dir: Path, *,
                 complete: Complete | None = None, clean_up: bool = True, privacy: str = "private",
                 warm_up: Callable[[], Any] | None = None) -> None:
        self.engine = engine
        self._warm_up = warm_up
        self.remember = remember
        self.audio_dir = audio_dir
        self.complete = complete
        self.clean_up = clean_up
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
        """Store the note; ``cleaned`` is a clean-up already made and checked (dictation),
        else the cleaner runs here when there is one."""
        timings = dict(timings or {})
        warnings: list[str] = []
        if not transcript.segments:
            audio_path.unlink(missing_ok=True)
            raise NoSpeechError(f"no speech was heard in the {transcript.duration:.1f} s recording; "
                                "nothing was saved")
        if cleaned is None and self.clean_up and self.complete is not None:
            t = time.perf_counter()
            cleaned, why_not = guarded_clean_up(self.complete, CLEAN_TASK, CLEAN_PROMPT,
                                                transcript.text, self.privacy)
            warnings += [f"note kept as transcribed: {w}" for w in why_not]
            timings["cleanup"] = time.perf_counter() - t
        t = time.perf_counter()
        draft = note_draft(note_id, transcript, audio_path, privacy=self.privacy, cleaned=cleaned,
                           recorded_at=recorded_at, origin=origin)
        source_id = self.remember(draft)
        timings["save"] = time.perf_counter() - t
        return VoiceNote(source_id, draft.text, transcript, audio_path, cleaned is not None,
                         warnings, timings)

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
        """Stop recording, transcribe, clean up (when a cleaner exists), save. Blocking."""
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
