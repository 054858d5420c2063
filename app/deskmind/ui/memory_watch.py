"""The desktop app's view of the memory as others change it: the memory watcher's hooks on the
tray and the memory browser.

When another process or machine writes, an open memory browser refreshes its list. When the
memory cannot be read (a PostgreSQL server that is down at start, or goes away), the tray says
so and keeps saying so until it is back; the app never opens some other memory instead.
"""

from __future__ import annotations

import logging
from typing import Any

from deskmind.core.memory.watcher import MemoryWatcher

log = logging.getLogger(__name__)


def start_memory_watch(app: Any, interval: float = 1.0) -> MemoryWatcher:
    """A started watcher of ``app.core``'s memory whose hooks reach the GUI thread through
    ``app.bridge``. GUI thread."""
    b = app.bridge
    b.memory_changed.connect(lambda: _memory_changed(app))
    b.memory_unavailable.connect(lambda msg: _memory_unavailable(app, msg))
    b.memory_available.connect(lambda: _memory_available(app))
    watcher = MemoryWatcher(lambda: app.core.store, on_change=b.on_memory_changed,
                            on_error=b.on_memory_unavailable,
                            on_available=b.on_memory_available, interval=interval)
    watcher.start()
    return watcher


def _memory_changed(app: Any) -> None:
    browser = app.built_window("browser")
    if browser is not None and browser.isVisible():
        browser.memory_changed()


def _memory_unavailable(app: Any, message: str) -> None:
    app.memory_error = message
    app.tray.notify("Memory unavailable", message, attention=True)


def _memory_available(app: Any) -> None:
    if app.memory_error is not None:
        app.memory_error = None
        app.tray.notify("Memory available again", "the memory can be read and written again")
        if app.tray.state == "attention":
            from deskmind.ui.speech_wiring import resting_state

            app.tray.set_state(resting_state(app))
