"""Meeting controls: tray start/stop with elapsed time, live transcript, minutes, recovery.

A meeting whose recording stops by itself (disk full, microphone gone) arrives as
``bridge.meeting_failed``, apart from voice notes' failures: the person is told, what was
recorded is saved, and the tray goes back to what is still running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from typing import Any, Awaitable, Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox

from deskmind.ui.bridge import CoreBridge
from deskmind.ui.shutdown import in_daemon_thread
from deskmind.ui.tasks import Workers
from deskmind.ui.tray import TrayController

log = logging.getLogger(__name__)


def minutes_markdown(result: Any, store: Any) -> str | None:
    """The saved minutes' text (worker thread); when the model could not write minutes, the
    minutes saying so; None when no model was asked."""
    mid = getattr(result, "minutes_id", None)
    if mid:
        return store.document_text(mid)
    minutes = getattr(result, "minutes", None)
    if minutes is not None and getattr(minutes, "unusable", ""):
        return minutes.to_markdown()
    return None


class MeetingController(QObject):
    state_changed = Signal(str)        # idle | starting | recording | saving
    saved = Signal(object)             # MeetingResult

    def __init__(self, make_recorder: Callable[..., Any], speech: Callable[[], Any], bridge: CoreBridge,
                 workers: Workers, tray: TrayController, store: Callable[[], Any],
                 resting_state: Callable[[], str] = lambda: "idle",
                 open_source: Callable[[int], None] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._speech, self.bridge, self.workers, self.tray = speech, bridge, workers, tray
        self._make = make_recorder
        self._store = store
        self._resting = resting_state
        self._open_source = open_source
        self.failure: str | None = None     # why the recording stopped by itself, if it did
        self.recorder: Any = None
        self.state = "idle"
        self.started_at = 0.0
        self.segments: list[Any] = []
        self.transcript: Any = None
        self.minutes: Any = None
        self.recovery_box: QMessageBox | None = None
        self._opening: Future | None = None   # the worker opening the recorder
        self._saving: Future | None = None    # the worker saving the meeting
        self._tick = QTimer(self, interval=1000)
        self._tick.timeout.connect(self._update_elapsed)
        bridge.segment_transcribed.connect(self._segment)
        bridge.meeting_failed.connect(self._stopped_by_itself)

    @property
    def running(self) -> bool:
        return self.state in ("starting", "recording")

    def _set(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)

    def toggle(self) -> None:
        if self.state == "idle":
            self.start()
        elif self.state == "recording":
            self.stop()

    def start(self, title: str | None = None) -> None:
        self._set("starting")
        self.failure = None
        self.segments = []
        if self.transcript is not None:
            self.transcript.clear()
        self._opening = self.workers.submit(self._open, title, done=self._started,
                                            failed=self._start_failed, executor=self.workers.pool)

    def _open(self, title: str | None) -> tuple[Any, str]:
        """Worker: build the recorder (the first one imports sounddevice, which starts
        PortAudio) and start recording."""
        rec = self._make(on_segment=self.bridge.on_segment, on_error=self.bridge.on_meeting_error)
        return rec, rec.start(title)

    def _started(self, opened: tuple[Any, str]) -> None:
        if self.state != "starting":   # quitting meanwhile: interrupt() took care of it
            return
        self.recorder, _meeting_id = opened
        self._set("recording")
        self.started_at = time.monotonic()
        self.tray.set_state("meeting")
        self._update_elapsed()
        self._tick.start()
        if self.failure is not None:      # it stopped before it was reported as started
            self._stopped_by_itself(self.failure)

    def _start_failed(self, exc: BaseException) -> None:
        self._set("idle")
        self.recorder = None
        self.tray.notify("Meeting not started", str(exc), attention=True)

    def _stopped_by_itself(self, message: str) -> None:
        """The recorder reported that recording had to stop (GUI thread): save what it has."""
        if self.state == "starting":
            self.failure = message
            return
        if self.state != "recording":
            return
        self.failure = message.rstrip(". ")
        log.warning("meeting recording stopped: %s", message)
        self.tray.notify("Meeting recording stopped", f"{self.failure}. Saving what was recorded…", attention=True)
        self.stop()

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at if self.state == "recording" else 0.0

    def _update_elapsed(self) -> None:
        self.tray.set_meeting(self.elapsed())

    def _segment(self, seg: Any) -> None:
        self.segments.append(seg)
        if self.transcript is not None:
            self.transcript.add_segment(seg)

    def stop(self) -> None:
        if self.state != "recording":
            return
        self._set("saving")
        self._tick.stop()
        self.tray.set_meeting(None)
        self.tray.act_meeting.setText("Saving meeting…")
        self.tray.act_meeting.setEnabled(False)
        self.tray.set_state("indexing", "saving the meeting")
        rec = self.recorder

        def finish() -> tuple[Any, str | None]:
            result = rec.stop()
            return result, minutes_markdown(result, self._store())

        self._saving = self.workers.submit(finish, done=self._saved, failed=self._save_failed,
                                           executor=self.workers.pool)

    def _saved(self, res: tuple[Any, str | None]) -> None:
        result, minutes = res
        self._set("idle")
        self.recorder = None
        self.tray.act_meeting.setEnabled(True)
        self.tray.set_meeting(None)
        self.tray.set_state(self._resting())
        self._announce(result, minutes, self.failure)
        self.saved.emit(result)

    def _announce(self, result: Any, minutes: str | None, failure: str | None = None) -> None:
        """Tell the person a meeting is in memory, and show its minutes: after a stop and
        after recovering one alike."""
        n = len(getattr(result, "segments", []) or [])
        saved = (f"{n} transcript segments, {getattr(result, 'duration', 0):.0f} s"
                 + ("" if minutes else "; minutes need a connected model"))
        if failure:
            self.tray.notify("Meeting stopped early and saved", f"{failure}. Saved what was recorded: {saved}")
        elif getattr(result, "recovered", False):
            self.tray.notify("Meeting saved", f"Recovered after the recording was cut off: {saved}")
        else:
            self.tray.notify("Meeting saved", saved)
        if minutes:
            self.show_minutes(minutes, getattr(result, "source_id", None))

    def _save_failed(self, exc: BaseException) -> None:
        self._set("idle")
        self.recorder = None
        self.tray.act_meeting.setEnabled(True)
        self.tray.set_meeting(None)
        self.tray.notify("Meeting not saved", f"{exc} — 'deskmind meeting recover' can retry", attention=True)

    # -- windows ---------------------------------------------------------------------------

    def show_transcript(self) -> Any:
        if self.transcript is None:
            from deskmind.ui.transcript_window import TranscriptWindow

            self.transcript = TranscriptWindow()
            for seg in self.segments:
                self.transcript.add_segment(seg)
        self.transcript.show()
        self.transcript.raise_()
        return self.transcript

    def show_minutes(self, markdown: str, meeting_id: int | None) -> Any:
        if self.minutes is None:
            from deskmind.ui.minutes_window import MinutesWindow

            self.minutes = MinutesWindow()
            if self._open_source is not None:
                self.minutes.open_meeting.connect(self._open_source)
        self.minutes.show_minutes(markdown, meeting_id)
        return self.minutes

    # -- recovery ----------------------------------------------------------------------------

    def check_interrupted(self) -> None:
        """At start: offer to save meetings whose recording was cut off (non-modal prompt)."""
        self.workers.submit(lambda: self._speech().interrupted_meetings(), done=self._offer_recovery,
                            failed=lambda e: log.warning("cannot look for interrupted meetings: %s", e))

    def _offer_recovery(self, folders: list[Any]) -> None:
        if not folders:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Interrupted meeting",
                          f"{len(folders)} meeting recording(s) stopped before being saved "
                          "(Deskmind or the computer stopped). Transcribe and save them now?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setObjectName("recoveryPrompt")
        box.buttonClicked.connect(lambda b: box.standardButton(b) == QMessageBox.StandardButton.Yes
                                  and self.recover(folders))
        box.open()  # never exec(): no nested loop under qasync
        self.recovery_box = box

    def recover(self, folders: list[Any]) -> None:
        self.tray.set_state("indexing", "recovering a meeting")

        def work() -> list[tuple[Any, str | None]]:
            results = []
            for f in folders:
                result = self._speech().recover(f)
                results.append((result, minutes_markdown(result, self._store())))
            return results

        def done(results: list[tuple[Any, str | None]]) -> None:
            self.tray.set_state(self._resting())
            for result, minutes in results:
                self._announce(result, minutes)
                self.saved.emit(result)

        def failed(exc: BaseException) -> None:
            self.tray.set_state(self._resting())
            self.tray.notify("Recovery failed", str(exc), attention=True)

        self.workers.submit(work, done=done, failed=failed)

    def interrupt(self) -> Awaitable[Any] | None:
        """Quitting (GUI thread): stop recording and leave the meeting to be recovered at the
        next start (the same path as a crash), rather than holding quit up for transcription.
        A meeting already being saved is waited for (the quit's bound applies; past it, it is
        recovered too). Returns what to await, or None when no meeting is on."""
        self._tick.stop()
        rec, self.recorder = self.recorder, None
        if self.state == "recording" and rec is not None:
            self._set("idle")
            return in_daemon_thread(rec.interrupt, "meeting")
        if self.state == "starting" and self._opening is not None:
            self._set("idle")

            async def opened_then_interrupted() -> None:
                opened = await asyncio.wrap_future(self._opening)
                await in_daemon_thread(opened[0].interrupt, "meeting")

            return opened_then_interrupted()
        if self.state == "saving" and self._saving is not None:
            return asyncio.wrap_future(self._saving)
        return None
