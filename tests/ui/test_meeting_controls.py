"""Meeting controls in the desktop app: who spoke in the live transcript, a meeting that stops
by itself, the tray while a voice note and a meeting overlap, the minutes window."""

from __future__ import annotations

import os

import pytest

import deskmind.core.speech  # noqa: E402,F401

from deskmind.core.speech.engine import Segment  # noqa: E402
from deskmind.ui.transcript_window import TranscriptWindow  # noqa: E402
from tests.fakes.audio import speech_wav, start_pulse  # noqa: E402


def test_live_transcript_says_who_spoke_from_the_channel(qtbot):
    win = TranscriptWindow()
    qtbot.addWidget(win)
    win.add_segment(Segment(0.0, 2.5, " Shall we start with the budget?", channel="me"))
    win.add_segment(Segment(3.2, 6.0, " Yes, the numbers came in today.", channel="others"))
    win.add_segment({"start": 65.0, "end": 67.0, "text": "Good.", "channel": "me"})
    win.add_segment(Segment(70.0, 71.0, "Thanks."))          # a voice note has no channel
    assert win.text.toPlainText().splitlines() == [
        "[0:00] me: Shall we start with the budget?",
        "[0:03] others: Yes, the numbers came in today.",
        "[1:05] me: Good.",
        "[1:10] Thanks.",
    ]
    assert win.segments == 4


def test_live_transcript_is_in_time_order_when_channels_arrive_out_of_order(qtbot):
    """Each channel is transcribed on its own: the computer's sound for 0:00-0:30 can arrive
    after the microphone's turns up to 0:40. The window shows them as they were spoken, like
    the saved transcript."""
    from deskmind.core.speech.storage import transcript_lines

    win = TranscriptWindow()
    qtbot.addWidget(win)
    arrived = [
        Segment(1.0, 4.0, "Morning, shall we start?", channel="me"),
        Segment(21.5, 25.0, "Then the budget is settled.", channel="me"),
        Segment(40.0, 43.0, "Next week then.", channel="me"),
        Segment(5.0, 9.0, "Yes, the numbers came in.", channel="others"),     # late: others' block
        Segment(21.5, 24.0, "Agreed.", channel="others"),                     # same start as mine
        Segment(30.0, 33.0, "One more thing about travel.", channel="others"),
        Segment(44.0, 46.0, "Bye.", channel="others"),                        # in order again
    ]
    for seg in arrived:
        win.add_segment(seg)
    shown = win.text.toPlainText().splitlines()
    assert shown == transcript_lines(sorted(arrived, key=lambda s: (s.start, s.channel or "")))
    assert shown[:3] == ["[0:01] me: Morning, shall we start?", "[0:05] others: Yes, the numbers came in.",
                         "[0:21] me: Then the budget is settled."]
    assert win.segments == 7
    win.clear()
    win.add_segment(Segment(2.0, 3.0, "Again.", channel="me"))
    assert win.text.toPlainText() == "[0:02] me: Again."


@pytest.fixture
def second_server(monkeypatch):
    """Another PulseAudio daemon, to be killed mid-recording (a microphone that goes away).
    ``use()`` makes the next stream opened connect to it, ``back()`` to the session's."""
    server = start_pulse("dm-pulse-gone-")
    session = os.environ["PULSE_SERVER"]
    server.use = lambda: monkeypatch.setenv("PULSE_SERVER", server.env["PULSE_SERVER"])
    server.back = lambda: monkeypatch.setenv("PULSE_SERVER", session)
    try:
        yield server
    finally:
        server.close()
        monkeypatch.setenv("PULSE_SERVER", session)


def notifications(app) -> list[str]:
    seen: list[str] = []
    app.tray.notified.connect(lambda title, message: seen.append(f"{title}: {message}"))
    return seen


def test_a_meeting_that_stops_by_itself_is_reported_and_saved_and_a_voice_note_goes_on(
        qtbot, speech_app, pulse, second_server, speech_dir):
    app, meeting, talk, tray = speech_app, speech_app.meeting, speech_app.talk, speech_app.tray
    told = notifications(app)
    second_server.use()
    tray.act_meeting.trigger()                                   # the meeting hears the second server
    qtbot.waitUntil(lambda: meeting.state == "recording", timeout=15000)
    second_server.back()
    talk.toggle()                                                # the voice note hears the session's
    qtbot.waitUntil(lambda: talk.state == "recording", timeout=15000)
    assert tray.state == "recording"
    second_server.play(speech_wav(speech_dir, "Welcome everyone. We agreed to ship on Friday."))
    qtbot.wait(500)                                              # what was played reached the recorder
    saved = []
    meeting.saved.connect(saved.append)
    second_server.kill()                                         # the meeting's microphone is gone
    qtbot.waitUntil(lambda: meeting.state != "recording", timeout=20000)
    stopped = [m for m in told if m.startswith("Meeting recording stopped: the microphone")]
    assert stopped and "stopped delivering audio" in stopped[0] and "Saving what was recorded" in stopped[0]
    qtbot.waitUntil(lambda: bool(saved), timeout=60000)
    assert meeting.state == "idle" and meeting.failure and "stopped delivering audio" in meeting.failure
    assert told[-1].startswith("Meeting stopped early and saved: the microphone")
    assert app.core.store.get_source(saved[0].source_id).kind == "meeting"
    assert tray.act_meeting.text() == "Start meeting" and tray.act_meeting.isEnabled()
    # The voice note never heard of it, and the tray still says a voice note is recording.
    assert talk.state == "recording" and tray.state == "recording"
    pulse.play(speech_wav(speech_dir, "Remember to call the plumber on Monday morning."))
    qtbot.wait(300)                                              # the end of it reached the recorder
    talk.toggle()
    qtbot.waitUntil(lambda: talk.state == "idle", timeout=60000)
    assert "Saved note:" in app.hud.label.text() and tray.state == "idle"


def test_a_voice_note_that_stops_by_itself_leaves_the_meeting_recording(
        qtbot, speech_app, pulse, second_server, speech_dir):
    app, meeting, talk, tray = speech_app, speech_app.meeting, speech_app.talk, speech_app.tray
    told = notifications(app)
    # Pre-roll off: the voice note opens its own stream at key-down, on the second server.
    app.speech.settings.preroll = False
    app.speech.disarm_microphone()
    tray.act_meeting.trigger()                                   # the meeting hears the session's server
    qtbot.waitUntil(lambda: meeting.state == "recording", timeout=15000)
    assert tray.state == "meeting"
    second_server.use()
    talk.toggle()                                                # the voice note hears the second server
    qtbot.waitUntil(lambda: talk.state == "recording", timeout=15000)
    second_server.back()
    assert tray.state == "recording"
    second_server.play(speech_wav(speech_dir, "Remember to call the plumber on Monday morning."))
    qtbot.wait(500)
    second_server.kill()                                         # the voice note's microphone is gone
    qtbot.waitUntil(lambda: talk.state == "idle", timeout=60000)
    # What was heard before the microphone went away is kept as the note.
    assert "Saved note:" in app.hud.label.text(), app.hud.label.text()
    assert "monday morning" in app.hud.label.text().lower(), app.hud.label.text()
    # The meeting goes on, and the tray shows it again once the voice note has ended.
    assert meeting.state == "recording" and meeting.failure is None and tray.state == "meeting"
    assert tray.act_meeting.text().startswith("Stop meeting")
    with qtbot.waitSignal(meeting.saved, timeout=60000):
        tray.act_meeting.trigger()
    assert tray.state == "idle" and told[-1].startswith("Meeting saved: ")
    assert not [m for m in told if "stopped" in m.split(":")[0]]


def test_ending_a_voice_note_during_a_meeting_puts_the_tray_back_to_the_meeting(
        qtbot, speech_app, pulse, speech_dir):
    app, meeting, talk, tray = speech_app, speech_app.meeting, speech_app.talk, speech_app.tray
    tray.act_meeting.trigger()
    qtbot.waitUntil(lambda: meeting.state == "recording", timeout=15000)
    talk.toggle()
    qtbot.waitUntil(lambda: talk.state == "recording", timeout=15000)
    assert tray.state == "recording"
    pulse.play(speech_wav(speech_dir, "Remember to call the plumber on Monday morning."))
    qtbot.wait(300)
    talk.toggle()
    assert talk.state == "transcribing" and tray.state == "meeting"
    qtbot.waitUntil(lambda: talk.state == "idle", timeout=60000)
    assert "Saved note:" in app.hud.label.text() and tray.state == "meeting"
    with qtbot.waitSignal(meeting.saved, timeout=60000):
        tray.act_meeting.trigger()
    assert tray.state == "idle"


def test_the_minutes_window_opens_its_meeting_in_the_memory_browser(qtbot, desktop):
    from PySide6.QtCore import Qt

    from tests.ui.conftest import remember_note

    qtbot.waitUntil(lambda: desktop.meeting is not None, timeout=15000)
    sid = remember_note(desktop.core, "me: we ship the beta on Friday.\n\nothers: I will write the notes.",
                        title="Weekly sync", kind="meeting")
    win = desktop.meeting.show_minutes("# Minutes\n\n- The beta ships on Friday.", sid)
    assert win.isVisible() and "beta ships" in win.view.toPlainText()
    qtbot.mouseClick(win.open_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "browser" in desktop._windows
                    and desktop._windows["browser"].item_view.item is not None, timeout=10000)
    browser = desktop._windows["browser"]
    assert browser.isVisible() and browser.item_view.item["source"].id == sid
    assert "Weekly sync" in browser.item_view.title.text()
