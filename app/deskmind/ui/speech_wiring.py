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
    meeting.check_interrupted()
    return talk, meeting
