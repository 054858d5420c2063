"""Builds the talk and meeting controllers over the core's speech service, when installed."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def make_speech(core: Any, complete: Any = None) -> Any:
    """The core's Speech service, or None when the speech engine is not installed. Imports the
    engine's modules: call from a worker. ``complete`` (minutes, note clean-up) is the core's
    routed completion when it offers one."""
    try:
        from deskmind.core.speech import Speech
    except ImportError as exc:
        log.info("speech unavailable: %s", exc)
        return None
    return Speech(core, complete=complete)


class SpeechSettingsFollower:
    """Applies each change of ``[speech]`` in the settings store to the running speech service:
    vocabulary, microphone, language and beam size at once; a new Whisper model by replacing the
    service when nothing records (otherwise as soon as the recording ends).
    ``status`` says what the last change did."""

    def __init__(self, app: Any, settings_store: Any) -> None:
        self.app = app
        self.status = ""
        self.pending: Any = None        # settings waiting for the current recording to end
        self.store = settings_store
        self.unsubscribe = settings_store.subscribe(self._changed)

    def save(self, values: dict[str, Any]) -> str:
        """Write ``[speech]`` keys (GUI thread; a refused value raises and changes nothing)."""
        self.status = "Saved; nothing changed"
        self.store.update("speech", values)
        return self.status

    def _changed(self, settings: Any, tables: frozenset[str]) -> None:
        """Any thread: the store calls subscribers on the writer's thread."""
        if "speech" not in tables:
            return
        from deskmind.ui.bridge import on_gui_thread

        if on_gui_thread():
            self.apply(settings.speech)
        else:
            self.app.bridge.run_on_main(self.apply, settings.speech)

    def recording_state_changed(self, _state: str = "") -> None:
        """GUI thread: a recording ended; a model change that waited for it applies now."""
        if self.pending is not None and not self._busy():
            new, self.pending = self.pending, None
            self.apply(new)

    def _busy(self) -> bool:
        app = self.app
        return (app.talk is not None and app.talk.state != "idle") or (
            app.meeting is not None and app.meeting.state != "idle")

    def apply(self, new: Any) -> None:
        """GUI thread."""
        app = self.app
        if app.speech is None:
            self.status = "Saved; the speech engine is not installed here"
            return
        cur = app.speech.settings
        if (new.model, new.model_path) != (cur.model, cur.model_path):
            if self._busy():
                self.pending = new
                self.status = "Saved; the new model is used after the current recording"
                return
            self.pending = None
            old = app.speech
            app.speech = make_speech(app.core, getattr(app.core, "complete", None))
            app.speech.settings = new
            if app.talk is not None:
                app.talk.settings_changed()  # the next note builds its recorder on the new service
            app.workers.submit(old.close)
            self.status = f"Saved; Whisper model {new.model} loads on the next recording"
            return
        for f in ("vocabulary", "input_device", "language", "beam_size"):
            setattr(cur, f, getattr(new, f))   # the engine reads these per transcription
        if app.talk is not None:
            app.talk.settings_changed()
        self.status = "Saved and applied"


def resting_state(app: Any) -> str:
    """The tray's state when one recording ends: the other one if it still runs, else idle."""
    talk, meeting = app.talk, app.meeting
    if talk is not None and talk.state in ("starting", "recording"):
        return "recording"
    if meeting is not None and meeting.state == "recording":
        return "meeting"
    if meeting is not None and meeting.state == "saving":
        return "indexing"
    return "idle"


def build_speech_controllers(app: Any) -> tuple[Any, Any]:
    """(talk controller, meeting controller), or (None, None) without a speech service."""
    if app.speech is None:
        return None, None
    from deskmind.ui.hud import TalkHud
    from deskmind.ui.meeting import MeetingController
    from deskmind.ui.talk import TalkController

    app.hud = TalkHud()
    app.hud.note_clicked.connect(lambda note: app.open_source_id(getattr(note, "source_id", None)))
    # Through app.speech, not a captured object: a model change in settings replaces the service.
    talk = TalkController(lambda **hooks: app.speech.voice_note_recorder(**hooks), app.bridge, app.workers,
                          app.hud, set_tray=lambda s: app.tray.set_state(resting_state(app) if s == "idle" else s),
                          parent=app)
    meeting = MeetingController(lambda **hooks: app.speech.meeting_recorder(**hooks), lambda: app.speech, app.bridge,
                                app.workers, app.tray, lambda: app.core.store,
                                resting_state=lambda: resting_state(app), open_source=app.open_source_id,
                                parent=app)
    talk.state_changed.connect(app.speech_follower.recording_state_changed)
    meeting.state_changed.connect(app.speech_follower.recording_state_changed)
    meeting.check_interrupted()
    return talk, meeting
