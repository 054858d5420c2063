"""The one road back to the GUI thread.

Core services report through plain callbacks that may fire on any thread (the pynput listener,
the sounddevice consumer, indexing and transcription workers). :class:`CoreBridge` turns each of
those hooks into a Qt ``Signal``; the bridge lives on the GUI thread, so a signal emitted from
another thread is queued and its slots run on the GUI thread. Nothing outside the GUI thread
touches a widget: worker code only ever calls ``bridge.<hook>(...)`` or :func:`run_on_main`.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)


class CoreBridge(QObject):
    """Signals for every core hook the desktop app listens to. Emit from any thread."""

    # hotkeys (pynput listener thread / portal / local socket)
    hotkey_pressed = Signal(str)
    hotkey_released = Signal(str)
    trigger_requested = Signal(str)        # "palette" | "talk" | "meeting" from `deskmind trigger`
    # indexing (the indexing child's progress lines)
    index_event = Signal(object)            # fields of deskmind.core.ingest.outcomes.IndexEvent
    # speech (recorder consumer thread / transcription worker)
    level_changed = Signal(float)           # 0..1 microphone level
    segment_transcribed = Signal(object)    # a segment with .start .end .text
    note_failed = Signal(str)               # a voice note's recording stopped by itself
    meeting_failed = Signal(str)            # a meeting's recording stopped by itself (disk full, mic gone)
    # the memory (the memory watcher's thread): someone, anywhere, wrote; or it cannot be read
    memory_changed = Signal()
    memory_unavailable = Signal(str)
    memory_available = Signal()
    # anything
    error_raised = Signal(str)
    _call = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._call.connect(self._run, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception:  # a failing callback must not take the event loop down
            log.exception("callback on the GUI thread failed")

    def run_on_main(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` on the GUI thread soon. Safe from any thread."""
        self._call.emit(lambda: fn(*args, **kwargs))

    # Hooks handed to core services: plain callables, safe from any thread.
    def on_index_event(self, event: Any) -> None:
        self.index_event.emit(event)

    def on_level(self, level: float) -> None:
        self.level_changed.emit(float(level))

    def on_segment(self, segment: Any) -> None:
        self.segment_transcribed.emit(segment)

    def on_note_error(self, error: BaseException) -> None:
        self.note_failed.emit(str(error))

    def on_meeting_error(self, error: BaseException) -> None:
        self.meeting_failed.emit(str(error))

    def on_memory_changed(self) -> None:
        self.memory_changed.emit()

    def on_memory_unavailable(self, message: str) -> None:
        self.memory_unavailable.emit(message)

    def on_memory_available(self) -> None:
        self.memory_available.emit()


def on_gui_thread() -> bool:
    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() is app.thread()
