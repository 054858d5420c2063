"""Push-to-talk and meeting controls over the real speech core: PulseAudio virtual microphone,
espeak-ng speech, real Whisper tiny.en."""

from __future__ import annotations

import uuid

import pytest


def test_push_to_talk_hold_saves_a_note(qtbot, speech_app, pulse, speech_dir):
    from tests.fakes.audio import speech_wav

    wav = speech_wav(speech_dir, "Remember to call the plumber on Monday morning.")
    app, talk, hud = speech_app, speech_app.talk, speech_app.hud
    levels = []
    app.bridge.level_changed.connect(levels.append)
    app.bridge.hotkey_pressed.emit("talk")          # what the listener thread emits on key-down
    qtbot.waitUntil(lambda: talk.state == "recording", timeout=10000)
    assert hud.isVisible() and hud.state == "recording" and app.tray.state == "recording"
    shown = []
    hud.meter.valueChanged.connect(shown.append)
    player = pulse.play(wav, wait=False)
    qtbot.waitUntil(lambda: player.poll() is not None, timeout=30000)
    # The speech moved the level and the HUD's meter showed it.
    qtbot.waitUntil(lambda: levels and max(levels) > 0.01 and shown and max(shown) > 0, timeout=5000)
    # Hold mode needs key-up events; arming was skipped here, so force the mode the check sets.
    talk.released(hold=True)
    qtbot.waitUntil(lambda: talk.state in ("transcribing", "idle"), timeout=5000)
    qtbot.waitUntil(lambda: hud.state == "toast", timeout=30000)
    assert "Saved note:" in hud.label.text() and "monday morning" in hud.label.text().lower()
    assert app.tray.state == "idle"
    hits = app.core.searcher().search("call on Monday morning", limit=3).hits
    assert hits and hits[0].kind == "note"


def test_meeting_from_tray_with_live_transcript(qtbot, speech_app, pulse, speech_dir):
    from tests.fakes.audio import speech_wav

    wav = speech_wav(speech_dir, "Welcome everyone. We agreed to ship on Friday.")
    app, meeting, tray = speech_app, speech_app.meeting, speech_app.tray
    tray.act_meeting.trigger()                           # Start meeting
    qtbot.waitUntil(lambda: meeting.state == "recording", timeout=10000)
    assert tray.state == "meeting" and tray.act_meeting.text().startswith("Stop meeting (0:0")
    tray.act_transcript.trigger()
    win = meeting.transcript
    assert win.isVisible()
    player = pulse.play(wav, wait=False)
    qtbot.waitUntil(lambda: player.poll() is not None, timeout=30000)
    qtbot.waitUntil(lambda: "(0:01)" in tray.act_meeting.text() or meeting.elapsed() > 2, timeout=5000)
    qtbot.wait(1200)
    assert tray.act_meeting.text() != "Stop meeting (0:00)"   # elapsed time moves
    with qtbot.waitSignal(meeting.saved, timeout=60000) as sig:
        tray.act_meeting.trigger()                       # Stop meeting
    result = sig.args[0]
    assert result.source_id and "friday" in win.text.toPlainText().lower()
    assert tray.state == "idle" and tray.act_meeting.text() == "Start meeting"
    assert "Meeting saved" in tray.fallback.status.text()


@pytest.mark.parametrize("model", ["writes minutes", "cannot write minutes"])
def test_interrupted_meeting_is_offered_for_recovery_at_start(qtbot, core, qloop, whisper_engine, speech_dir,
                                                              model):
    """A meeting whose recorder died is found at start; Yes in the (non-modal) prompt saves it,
    and the person is told as after a normal stop: "Meeting saved", and its minutes open (or,
    when the model could not write them, minutes that say so, never "none")."""
    import shutil

    from PySide6.QtWidgets import QMessageBox

    from deskmind.core.speech import Speech
    from deskmind.core.speech.segments import MeetingFolder, SegmentInfo
    from deskmind.ui.app import DesktopApp
    from tests.core.speech.minutes_writer import MinutesWriter
    from tests.fakes.audio import speech_wav
    from tests.ui.conftest import no_runtime_hub

    def not_json(task, prompt, privacy, schema=None):
        return "Decisions: none. Action items: none. Open questions: none."

    complete = MinutesWriter() if model == "writes minutes" else not_json
    speech = Speech(core, engine=whisper_engine, system_source=lambda: None, complete=complete)
    folder = MeetingFolder.create(speech.meetings_dir, "m-cut", title="Cut off", pid=999999999)
    shutil.copy(speech_wav(speech_dir, "We decided that the budget review starts on Monday morning."),
                folder.path / "me-0001.wav")
    folder.put_segment(SegmentInfo("me", 1, "me-0001.wav", 0.0, 16000))
    app = DesktopApp(core, tray_available=False, speech=speech, hub_kw=no_runtime_hub(),
                     instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}")
    try:
        assert app.start(hotkeys=False)
        qtbot.waitUntil(lambda: app.meeting is not None and app.meeting.recovery_box is not None, timeout=15000)
        box = app.meeting.recovery_box
        assert box.isVisible() and "1 meeting recording(s) stopped" in box.text()
        saved = []
        app.meeting.saved.connect(saved.append)
        box.button(QMessageBox.StandardButton.Yes).click()
        qtbot.waitUntil(lambda: "Meeting saved" in app.tray.fallback.status.text(), timeout=60000)
        status = app.tray.fallback.status.text()
        assert "Recovered after the recording was cut off: 1 transcript segments" in status
        assert [s.kind for s in core.store.list_sources(kind="meeting")] == ["meeting"]
        assert speech.interrupted_meetings() == []
        # The minutes window shows the recovered meeting's minutes, as after a stop.
        win = app.meeting.minutes
        assert win is not None and win.isVisible()
        shown = win.view.toPlainText()
        if model == "writes minutes":
            assert "Decisions" in shown and "budget review" in shown.lower() and "[0:00]" in shown
            assert [s.kind for s in core.store.list_sources(kind="minutes")] == ["minutes"]
        else:
            assert shown.startswith("Minutes\nThe model could not write minutes for this meeting: its "
                                    "answer could not be read as minutes. The transcript is saved.")
            assert "none" not in shown and core.store.list_sources(kind="minutes") == []
        assert saved and saved[0].recovered and win.meeting_id == saved[0].source_id
    finally:
        from tests.ui.conftest import close_app

        close_app(app)


def test_recorders_are_built_and_sounddevice_reached_off_the_gui_thread(qtbot, core, qloop, sd, pulse,
                                                                         whisper_engine, speech_dir):
    """Building a recorder reaches sounddevice (its first import starts PortAudio): the first
    push-to-talk and the first meeting do that in a worker, and report back on the GUI thread."""
    import threading

    from deskmind.core.speech import Speech
    from deskmind.ui.app import DesktopApp
    from deskmind.ui.bridge import on_gui_thread
    from tests.fakes.audio import speech_wav
    from tests.ui.conftest import close_app, no_runtime_hub

    class WatchedSpeech(Speech):
        """The real speech service, noting on which thread recorders and sounddevice are asked for."""

        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            self.threads: list[tuple[str, threading.Thread]] = []

        @property
        def sd(self):
            self.threads.append(("sounddevice", threading.current_thread()))
            return super().sd

        def voice_note_recorder(self, **hooks):
            self.threads.append(("note", threading.current_thread()))
            return super().voice_note_recorder(**hooks)

        def meeting_recorder(self, **hooks):
            self.threads.append(("meeting", threading.current_thread()))
            return super().meeting_recorder(**hooks)

    speech = WatchedSpeech(core, sd=sd, engine=whisper_engine, system_source=lambda: None)
    app = DesktopApp(core, tray_available=False, speech=speech, hub_kw=no_runtime_hub(),
                     instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}")
    try:
        assert app.start(hotkeys=False)
        qtbot.waitUntil(lambda: app.talk is not None and app.meeting is not None, timeout=10000)
        states: list[tuple[str, bool]] = []
        app.talk.state_changed.connect(lambda s: states.append((s, on_gui_thread())))
        app.meeting.state_changed.connect(lambda s: states.append((s, on_gui_thread())))
        app.talk.toggle()
        qtbot.waitUntil(lambda: app.talk.state == "recording", timeout=15000)
        app.meeting.toggle()
        qtbot.waitUntil(lambda: app.meeting.state == "recording", timeout=15000)
        assert {what for what, _t in speech.threads} == {"note", "meeting", "sounddevice"}
        gui = threading.main_thread()
        assert all(t is not gui for _what, t in speech.threads), speech.threads
        assert app.talk.recorder is not None and app.meeting.recorder is not None
        pulse.play(speech_wav(speech_dir, "Remember to call the plumber on Monday morning."))
        app.talk.toggle()
        qtbot.waitUntil(lambda: app.talk.state == "idle", timeout=60000)
        with qtbot.waitSignal(app.meeting.saved, timeout=60000):
            app.meeting.toggle()
        assert all(gui_thread for _s, gui_thread in states), states
        assert [s for s, _g in states if s in ("starting", "recording")] == ["starting", "recording"] * 2
    finally:
        close_app(app)
