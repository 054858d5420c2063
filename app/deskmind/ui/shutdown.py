"""Quitting: every service closed in order, on the GUI loop, within one total bound.

The order matters. The answer being streamed is cancelled first and allowed to unwind, so no
model is freed under a generation; recordings stop next (a meeting is left to be recovered, a
voice note or a dictation is dropped); then the indexing child, the tray's gateway, the
runtime hub (its HTTP client and in-process models belong to the GUI loop, so they are closed
there, from a task of that loop) and the speech engine; last the hotkeys, the local socket, the tray and the windows.

Each step gets what is left of the bound; a step that overruns is logged and left behind. Work
that blocks runs on a daemon thread, so a stuck step cannot hold the process at exit either.
If the process is still alive a little after the bound (a native library that does not let go,
a thread that never ends), :func:`arm_last_resort` ends it with ``os._exit`` and says so in the log.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

QUIT_BOUND_S = 6.0       # every step together
QUIT_STEP_BOUND_S = 3.0  # one step: a stuck one leaves time for those after it
LAST_RESORT_GRACE_S = 3.0  # after the bound: leaving the loop and the interpreter's own exit
FORCED_EXIT_CODE = 70


@dataclass
class QuitStep:
    name: str
    run: Callable[[], Any]  # GUI thread; what it returns is awaited when it is awaitable


@dataclass
class QuitReport:
    seconds: float = 0.0
    done: list[str] = field(default_factory=list)
    overran: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.overran and not self.failed


def in_daemon_thread(fn: Callable[[], Any], name: str) -> "asyncio.Future[Any]":
    """Run blocking ``fn`` on a daemon thread; its result comes back on the running loop.

    Not an executor: a thread of a pool is joined when the interpreter exits, so a call that
    never returns would keep the process alive after quitting."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not fut.done():
            fut.set_result(value) if ok else fut.set_exception(value)

    def work() -> None:
        try:
            value, ok = fn(), True
        except BaseException as exc:  # handed to the awaiting step
            value, ok = exc, False
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:  # the loop has closed: quitting went on without this step
            pass

    threading.Thread(target=work, name=f"deskmind-quit-{name}", daemon=True).start()
    return fut


async def run_steps(steps: list[QuitStep], bound_s: float = QUIT_BOUND_S,
                    step_bound_s: float | None = None,
                    clock: Callable[[], float] = time.monotonic) -> QuitReport:
    """Run ``steps`` in order on the running loop, all of them within ``bound_s`` and each
    within ``step_bound_s`` (when given)."""
    t0 = clock()
    deadline = t0 + bound_s
    report = QuitReport()
    for step in steps:
        left = deadline - clock()
        if step_bound_s is not None:
            left = min(left, step_bound_s)
        if left <= 0:
            log.warning("quitting: no time left to close %s", step.name)
            report.overran.append(step.name)
            continue
        try:
            res = step.run()
            if inspect.isawaitable(res):
                await asyncio.wait_for(asyncio.ensure_future(res), left)
            report.done.append(step.name)
        except asyncio.TimeoutError:
            log.warning("quitting: closing %s took longer than %.1f s; going on without it", step.name, left)
            report.overran.append(step.name)
        except Exception:
            log.exception("quitting: closing %s failed", step.name)
            report.failed.append(step.name)
    report.seconds = clock() - t0
    log.info("quit: closed %s in %.2f s", ", ".join(report.done) or "nothing", report.seconds)
    return report


def arm_last_resort(after_s: float = QUIT_BOUND_S + LAST_RESORT_GRACE_S,
                    exit_now: Callable[[int], Any] = os._exit) -> threading.Event:
    """From the moment quitting starts: if the process still runs ``after_s`` later, log why
    and end it. Set the returned event to disarm (a process that goes on, such as a test)."""
    disarmed = threading.Event()

    def watch() -> None:
        if disarmed.wait(after_s):
            return
        busy = sorted(t.name for t in threading.enumerate()
                      if t is not threading.current_thread() and not t.daemon and t is not threading.main_thread())
        log.error("quitting did not finish within %.0f s (threads still running: %s): exiting now",
                  after_s, ", ".join(busy) or "none")
        for h in logging.getLogger().handlers:
            try:
                h.flush()
            except Exception:  # a broken handler must not stop the exit
                pass
        exit_now(FORCED_EXIT_CODE)

    threading.Thread(target=watch, name="deskmind-quit-watchdog", daemon=True).start()
    return disarmed


def quit_steps(app: Any) -> list[QuitStep]:
    """The desktop app's services, in the order they close (see the module docstring)."""
    return [
        QuitStep("settings notifications", app.speech_follower.unsubscribe),
        QuitStep("the answer being streamed", lambda: _cancel_answer(app.palette)),
        QuitStep("the meeting recording", lambda: app.meeting.interrupt() if app.meeting is not None else None),
        QuitStep("the voice note", lambda: app.talk.shutdown() if app.talk is not None else None),
        QuitStep("dictation", lambda: app.dictation.shutdown() if app.dictation is not None else None),
        QuitStep("the memory watcher", lambda: in_daemon_thread(app.memory_watcher.stop, "memory watcher")
                 if app.memory_watcher is not None else None),
        QuitStep("indexing", app.indexing.stop),
        QuitStep("the gateway", lambda: in_daemon_thread(app.gateway.shutdown, "gateway")),
        QuitStep("the model runtimes", app.ask.aclose),
        QuitStep("the speech engine", lambda: _close_speech(app.speech)),
        QuitStep("the hotkeys", app.hotkeys.stop),
        QuitStep("the windows", app.release_widgets),
    ]


async def _cancel_answer(palette: Any) -> None:
    if palette is None:
        return
    task = palette.task
    palette.cancel()
    if task is not None and not task.done():
        # Let the cancelled stream unwind here, on its own loop: it closes the HTTP response
        # and stops an in-process generation at its next token.
        await asyncio.wait([task])


def _close_speech(speech: Any) -> Awaitable[Any] | None:
    if speech is None:
        return None
    return in_daemon_thread(speech.close, "speech")
