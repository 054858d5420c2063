"""Executors for blocking work, with results delivered on the GUI thread.

One pool for CPU or blocking work (embeddings, indexing, search, transcription), one
single-worker executor for the keyring (some backends are not thread-safe and may prompt).
Coroutines ``await workers.run(fn)``; plain Qt code uses ``workers.submit(fn, done=...)``; both
hand the result back through the bridge, never from the worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from deskmind.ui.bridge import CoreBridge

log = logging.getLogger(__name__)


BACKGROUND_NICE = 5


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> None:
    """Executor initializer: this worker thread (and threads it starts, such as a model's
    compute threads) yields the CPU to the GUI thread. Linux has per-thread nice values;
    elsewhere this does nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


def background_executor(workers: int, name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name, initializer=lower_thread_priority)


class Workers:
    def __init__(self, bridge: CoreBridge, max_workers: int = 2) -> None:
        self.bridge = bridge
        self.pool = background_executor(max_workers, "deskmind-work")
        self.secrets = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deskmind-keyring")
        self.speech = background_executor(1, "deskmind-speech")
        self.closed = False   # quitting: results that arrive later have no one to go to

    def run(self, fn: Callable[..., Any], *args: Any, executor: ThreadPoolExecutor | None = None) -> "asyncio.Future[Any]":
        """Awaitable result of ``fn(*args)`` run in a worker (from a coroutine on the GUI loop)."""
        return asyncio.get_event_loop().run_in_executor(executor or self.pool, fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any, done: Callable[[Any], None] | None = None,
               failed: Callable[[BaseException], None] | None = None,
               executor: ThreadPoolExecutor | None = None) -> Future:
        """Run ``fn(*args)`` in a worker; ``done(result)`` or ``failed(exc)`` run on the GUI thread."""
        fut = (executor or self.pool).submit(fn, *args)

        def finished(f: Future) -> None:
            if f.cancelled() or self.closed:
                return
            exc = f.exception()
            if exc is not None:
                if failed is not None:
                    self.bridge.run_on_main(failed, exc)
                else:
                    log.error("background work failed", exc_info=exc)
                    self.bridge.error_raised.emit(str(exc))
            elif done is not None:
                self.bridge.run_on_main(done, f.result())

        fut.add_done_callback(finished)
        return fut

    WARM_MODULES = (
        "deskmind.core.ask.pipeline", "deskmind.core.ask.session", "deskmind.core.memory.search",
        "deskmind.core.runtimes.ollama", "deskmind.core.runtimes.openai_compat",
        "deskmind.core.runtimes.anthropic", "deskmind.core.runtimes.discovery",
        # widgets built on first use: their modules load here, not under the person's click
        "deskmind.ui.hud", "deskmind.ui.talk", "deskmind.ui.dictation", "deskmind.ui.meeting", "deskmind.ui.transcript_window",
        "deskmind.ui.minutes_window", "deskmind.ui.dropzone", "deskmind.ui.browser.window",
        "deskmind.ui.settings.build", "deskmind.ui.status",
        # PortAudio starts (and lists the devices) when sounddevice is first imported, ~0.1-0.2 s:
        # here, not when the first push-to-talk opens the microphone.
        "sounddevice",
        # The speech engine's native libraries: initialising them holds the GIL for a few
        # hundred ms, so it happens once, right after start, not during the first voice note.
        "faster_whisper", "ctranslate2",
    )

    def warm_up(self, modules: tuple[str, ...] = WARM_MODULES) -> Future:
        """Start the worker threads and import what the first question needs, while idle.

        Starting a pool thread waits for the OS to schedule it, and a first import compiles
        modules: neither should happen on the GUI thread when the person is waiting.
        """
        import importlib

        def load() -> None:
            for m in modules:
                try:
                    importlib.import_module(m)
                except (ImportError, OSError):  # OSError: a native library (PortAudio) is missing
                    pass

        for ex in (self.pool, self.secrets, self.speech):
            for _ in range(ex._max_workers):
                ex.submit(lambda: None)
        return self.pool.submit(load)

    def shutdown(self) -> None:
        self.closed = True
        for ex in (self.pool, self.secrets, self.speech):
            ex.shutdown(wait=False, cancel_futures=True)
