"""Executors for blocking work, with results delivered on the GUI thread.

One pool for CPU or blocking work (embeddings, indexing, search, transcription), one
single-worker executor for the keyring (some backends are not thread-safe and may prompt).
Coroutines ``await workers.run(fn)``; plain Qt code uses ``workers.submit(fn, done=...)``; both
hand the result back through the bridge, never from the worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from deskmind.ui.bridge import CoreBridge

log = logging.getLogger(__name__)


class Workers:
    def __init__(self, bridge: CoreBridge, max_workers: int = 2) -> None:
        self.bridge = bridge
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="deskmind-work")
        self.secrets = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deskmind-keyring")
        self.speech = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deskmind-speech")

    def run(self, fn: Callable[..., Any], *args: Any, executor: ThreadPoolExecutor | None = None) -> "asyncio.Future[Any]":
        """Awaitable result of ``fn(*args)`` run in a worker (from a coroutine on the GUI loop)."""
        return asyncio.get_event_loop().run_in_executor(executor or self.pool, fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any, done: Callable[[Any], None] | None = None,
               failed: Callable[[BaseException], None] | None = None,
               executor: ThreadPoolExecutor | None = None) -> Future:
        """Run ``fn(*args)`` in a worker; ``done(result)`` or ``failed(exc)`` run on the GUI thread."""
        fut = (executor or self.pool).submit(fn, *args)

        def finished(f: Future) -> None:
            if f.cancelled():
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

    def shutdown(self) -> None:
        for ex in (self.pool, self.secrets, self.speech):
            ex.shutdown(wait=False, cancel_futures=True)
