"""Meeting controls in the desktop app: who spoke in the live transcript, a meeting that stops
by itself, the tray while a voice note and a meeting overlap, the minutes window."""

from __future__ import annotations

from deskmind.core.speech.engine import Segment
from deskmind.ui.transcript_window import TranscriptWindow


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
