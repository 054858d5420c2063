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
        return any(c is not None and c.state != "idle"
                   for c in (app.talk, app.meeting, getattr(app, "dictation", None)))

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
            for keys in (app.talk, getattr(app, "dictation", None)):
                if keys is not None:
                    keys.settings_changed()  # the next one is built on the new service
            app.workers.submit(old.close)    # closes the old service's armed microphone too
            arm_talk_keys(app)
            self.status = f"Saved; Whisper model {new.model} loads on the next recording"
            return
        for f in ("vocabulary", "input_device", "language", "beam_size", "preroll", "preroll_s",
                  "dictate_save_note", "dictate_clean_up", "max_dictation_s"):
            setattr(cur, f, getattr(new, f))   # read per transcription, dictation or arming
        for keys in (app.talk, getattr(app, "dictation", None)):
            if keys is not None:
                keys.settings_changed()
        arm_talk_keys(app)      # pre-roll on or off, another microphone: at once
        self.status = "Saved and applied"


def resting_state(app: Any) -> str:
    """The tray's state when one recording ends: the other one if it still runs, else idle."""
    talk, meeting = app.talk, app.meeting
    dictation = getattr(app, "dictation", None)
    if any(c is not None and c.state in ("starting", "recording") for c in (talk, dictation)):
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
    app.dictation = build_dictation(app)
    if app.dictation is not None:
        app.dictation.state_changed.connect(app.speech_follower.recording_state_changed)
    arm_talk_keys(app)
    return talk, meeting


def dictation_permission(config_dir: Any) -> bool:
    """Whether the dictation agent may type into other apps, from routing.toml as it is now
    (Settings → Agents edits it). A file that cannot be read refuses. Blocking: a worker."""
    from deskmind.core.agents.permissions import agent_config
    from deskmind.core.routing.config import load_routing

    try:
        return bool(agent_config(load_routing(config_dir), "dictation").paste)
    except Exception as exc:  # a broken rules file must not type anything
        log.warning("dictation may not type: the rules could not be read (%s)", exc)
        return False


def build_dictation(app: Any) -> Any:
    """The dictate key's controller (needs the HUD of build_speech_controllers), and the
    delivery line for the hotkey self-check; None without a speech service."""
    if app.speech is None or app.hud is None:
        return None
    from deskmind.core.agents.audit import AuditLog
    from deskmind.core.speech.deliver import Deliverer
    from deskmind.ui.dictation import DictationController, MainThreadClipboard

    deliverer = Deliverer(MainThreadClipboard(app.bridge))
    app.hotkeys.describe_delivery = deliverer.describe

    def audit(args: dict, decision: str, reason: str) -> None:
        AuditLog(app.core.store).add("dictation", "paste", args, decision, reason)

    def make(**hooks: Any) -> Any:
        return app.speech.dictation(deliverer, may_paste=lambda: dictation_permission(app.core.paths.config_dir),
                                    audit=audit, **hooks)

    controller = DictationController(make, app.bridge, app.workers, app.hud,
                                     notify=lambda title, msg: app.tray.notify(title, msg),
                                     set_tray=lambda s: app.tray.set_state(resting_state(app) if s == "idle" else s),
                                     parent=app)
    controller.prepare()
    return controller


def arm_talk_keys(app: Any) -> None:
    """Open the microphone for the pre-roll when it is on (close it when off), in a worker.
    A microphone that cannot be opened now is opened at key-down instead."""
    if app.speech is None:
        return
    speech = app.speech

    def arm() -> bool:
        return speech.arm_microphone(on_error=app.bridge.on_note_error)

    app.workers.submit(arm, done=lambda on: log.info("pre-roll %s", "armed" if on else "off"),
                       failed=lambda e: log.warning("pre-roll unavailable, the microphone opens "
                                                    "at key-down: %s", e))
