"""Speech for one :class:`Core`: the engine (one Whisper model), note and meeting recorders,
recovery, and forgetting with audio files. The CLI and the desktop each build one."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

from deskmind.core.errors import DeskmindError
from deskmind.core.memory.models import ForgetReceipt
from deskmind.core.speech.armed_mic import ArmedMicrophone
from deskmind.core.speech.capture import MicrophoneError
from deskmind.core.speech.deliver import Deliverer
from deskmind.core.speech.dictation import Audit, Dictation
from deskmind.core.speech.engine import ModelFactory, Transcript, TranscriptionEngine
from deskmind.core.speech.meeting import MeetingRecorder, default_monitor_source, find_interrupted
from deskmind.core.speech.cleanup import CleanupRecord, NoteCleaner
from deskmind.core.speech.notes import Complete, NoteSaver, VoiceNote, VoiceNoteRecorder
from deskmind.core.speech.segments import MeetingFolder
from deskmind.core.speech.settings import SpeechSettings, speech_settings
from deskmind.core.speech.storage import made_files_remover
from deskmind.core.speech.transcribe_meeting import MeetingResult, finish_meeting

log = logging.getLogger(__name__)


def import_sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio shared library is missing
        raise MicrophoneError(f"audio capture is unavailable: {exc} (on Debian/Ubuntu: "
                              "apt install libportaudio2)") from exc
    return sounddevice


class Speech:
    def __init__(self, core: Any, *, sd: Any = None, complete: Complete | None = None,
                 model_factory: ModelFactory | None = None,
                 engine: TranscriptionEngine | None = None,
                 system_source: Callable[[], str | None] | None = default_monitor_source) -> None:
        self.core = core
        self.settings: SpeechSettings = speech_settings(core.settings)
        self.complete = complete
        self._sd = sd
        self._factory = model_factory
        self._engine = engine
        self._owns_engine = engine is None
        self._system_source = system_source
        self._lock = threading.Lock()
        self._cleaner: NoteCleaner | None = None
        self.cleanup_record = CleanupRecord(core.paths.data_dir / "note-cleanup.json")
        self._armed: ArmedMicrophone | None = None

    @property
    def engine(self) -> TranscriptionEngine:
        with self._lock:
            if self._engine is None:
                self._engine = TranscriptionEngine(self.settings, self._factory)
            return self._engine

    @property
    def sd(self) -> Any:
        if self._sd is None:
            self._sd = import_sounddevice()
        return self._sd

    @property
    def audio_dir(self) -> Path:
        return self.core.paths.audio_dir

    @property
    def meetings_dir(self) -> Path:
        return self.audio_dir / "meetings"

    @property
    def note_cleaner(self) -> NoteCleaner | None:
        """The background cleaner of saved notes; None when clean-up is off or no model is set."""
        if not self.settings.clean_up_notes or self.complete is None:
            return None
        with self._lock:
            if self._cleaner is None:
                self._cleaner = NoteCleaner(self.complete, self.core.remember, self.cleanup_record,
                                            privacy=self.settings.note_privacy)
            return self._cleaner

    def note_saver(self) -> NoteSaver:
        return NoteSaver(self.engine, self.core.remember, self.audio_dir, cleaner=self.note_cleaner,
                         privacy=self.settings.note_privacy, warm_up=self._warm_up_memory)

    def _warm_up_memory(self) -> None:
        try:
            self.core.active_embedder()
            self.core.store  # noqa: B018  (opens the database)
        except DeskmindError as exc:  # the save will report it
            log.debug("warm-up: %s", exc)

    def voice_note_recorder(self, **hooks: Any) -> VoiceNoteRecorder:
        return VoiceNoteRecorder(self.note_saver(), self.sd, device=self.settings.input_device,
                                 armed=lambda: self._armed, **hooks)

    # -- pre-roll: one armed microphone shared by both talk keys ---------------------------

    def arm_microphone(self, on_error: Callable[[DeskmindError], None] | None = None) -> bool:
        """With pre-roll on, open the microphone and keep the last ``preroll_s`` seconds in
        memory while the talk keys are armed; with it off, close it. Blocking. True when armed.
        Raises MicrophoneError when it cannot be opened (the talk keys then open it on key-down)."""
        if not self.settings.preroll:
            self.disarm_microphone()
            return False
        with self._lock:
            mic = self._armed
            stale = mic is not None and (mic.device, mic.seconds) != (
                self.settings.input_device, self.settings.preroll_s)
        if stale:
            self.disarm_microphone()
            mic = None
        if mic is None:
            mic = ArmedMicrophone(self.sd, device=self.settings.input_device,
                                  seconds=self.settings.preroll_s, on_error=on_error)
        mic.arm()
        with self._lock:
            self._armed = mic
        return True

    def disarm_microphone(self) -> None:
        with self._lock:
            mic, self._armed = self._armed, None
        if mic is not None:
            mic.disarm()

    @property
    def armed_microphone(self) -> ArmedMicrophone | None:
        return self._armed

    def dictation(self, deliverer: Deliverer, *, may_paste: Callable[[], bool],
                  audit: Audit | None = None, **hooks: Any) -> Dictation:
        """Dictation over this service's engine, note saver and (when armed) pre-roll.
        The clean-up, when turned on, goes through the routed completion as for notes."""
        return Dictation(self.note_saver(), self.sd, deliverer, self.settings, armed=lambda: self._armed,
                         may_paste=may_paste, audit=audit, complete=self.complete, **hooks)

    def note_from_file(self, path: Path | str, **hooks: Any) -> VoiceNote:
        return self.note_saver().from_file(path, **hooks)

    def meeting_recorder(self, **hooks: Any) -> MeetingRecorder:
        return MeetingRecorder(self.engine, self.core.remember, self.meetings_dir, self.sd,
                               self.settings, complete=self.complete,
                               system_source=self._system_source, **hooks)

    def transcribe_file(self, path: Path | str, **kw: Any) -> Transcript:
        return self.engine.transcribe_file(path, **kw)

    def interrupted_meetings(self) -> list[MeetingFolder]:
        return find_interrupted(self.meetings_dir)

    def recover(self, folder: MeetingFolder, **hooks: Any) -> MeetingResult:
        """Transcribe and save a meeting whose recorder died before it could."""
        return finish_meeting(folder, self.engine, self.core.remember, complete=self.complete,
                              settings=self.settings, recovered=True, **hooks)

    def forget(self, ref: str | int) -> ForgetReceipt:
        """Forget a note or meeting with everything derived from it and its audio files."""
        return self.core.store.forget(ref, remove_files=made_files_remover(self.audio_dir))

    def close(self) -> None:
        if self._cleaner is not None:  # notes not yet cleaned stay as transcribed
            self._cleaner.close(wait=False)
        self.disarm_microphone()
        if self._engine is not None and self._owns_engine:
            self._engine.close()


__all__ = ["Speech", "DeskmindError"]
