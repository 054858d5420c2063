"""Quitting closes every service in order, within its bound, whatever is running.

In process (the real DesktopApp on the test's qasync loop): quitting while a model streams from
a slow Ollama-protocol server, while the indexing child works through a folder, while a meeting
records from the PulseAudio virtual microphone (the meeting is recoverable afterwards and is
then saved). The real app as a process is quit the same way in tests/ui/test_quit_process.py.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import uuid
import warnings
from pathlib import Path

import pytest

import deskmind.core.ask.pipeline  # noqa: F401  (the ask pipeline is installed)
from deskmind.core.runtimes.base import Timeouts
from deskmind.core.secrets import SecretStore
from deskmind.ui.shutdown import QUIT_BOUND_S
from deskmind.ui.single_instance import send_message
from tests.fakes.llm_server import FakeLLMServer, Faults, Reply
from tests.ui.conftest import close_app, remember_note
from tests.ui.test_ask_ui import rules

FAST = Timeouts(connect=1.0, first_token=5.0, stall=3.0, request=30.0)
BAD_LINES = ("was never awaited", "Task exception was never retrieved", "AsyncLibraryNotFoundError",
             "Task was destroyed but it is pending", "exiting now")


def quit_and_time(app) -> float:
    t0 = time.monotonic()
    close_app(app, timeout_s=QUIT_BOUND_S + 5)
    return time.monotonic() - t0


def assert_no_bad_lines(caplog, caught: list) -> None:
    gc.collect()   # an unawaited coroutine or an unretrieved task error shows when collected
    said = [r.getMessage() for r in caplog.records] + [str(w.message) for w in caught]
    bad = [line for line in said if any(b in line for b in BAD_LINES)]
    assert not bad, bad


@pytest.fixture
def app_over(core, qtbot, qloop):
    """A DesktopApp built by the test; the test quits it (and it is quit here if it did not)."""
    from deskmind.ui.app import DesktopApp

    made = []

    def make(**kw):
        app = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                         hub_kw={"targets": (), "embedded": None, "timeouts": FAST,
                                 "secrets": SecretStore(environ={})}, **kw)
        made.append(app)
        assert app.start(hotkeys=False)
        qtbot.waitUntil(lambda: app.palette is not None, timeout=5000)
        return app

    yield make
    for app in made:
        if app.quitting is None:
            close_app(app)


def test_quit_while_a_model_streams_cuts_the_stream_and_closes_the_hub(qtbot, app_over, caplog):
    caplog.set_level(logging.INFO)
    app = app_over()
    with warnings.catch_warnings(record=True) as caught, \
            FakeLLMServer(reply=Reply("slowly " * 400), faults=Faults(token_delay=0.1)) as srv:
        warnings.simplefilter("always")
        app.core.paths.config_dir.mkdir(parents=True, exist_ok=True)
        (app.core.paths.config_dir / "routing.toml").write_text(rules(srv.url, paste=False))
        p = app.palette
        p.input.setText("tell me everything")
        p.submit()
        qtbot.waitUntil(lambda: p.answer.count("slowly") >= 3, timeout=15000)
        hub = app.ask.pipeline.hub
        assert hub is not None and not hub.client.is_closed
        seconds = quit_and_time(app)
        assert seconds < 3.0, seconds                    # the stream is cut, not waited for
        assert app.quit_report.clean, app.quit_report
        assert p.task.done() and p.answer.endswith("*(cancelled)*")
        assert p.answer.count("slowly") < 100
        assert hub.client.is_closed and app.ask.pipeline.hub is None
        assert send_message(app.instance.name, {"cmd": "status"}, timeout_ms=300) is None   # socket closed
        assert_no_bad_lines(caplog, caught)


def test_quit_while_indexing_stops_the_child_between_files(qtbot, app_over, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(150):
        (docs / f"note{i:03}.md").write_text(f"# Note {i}\n\n" + f"Paragraph {i} about topic {i % 7}. " * 40)
    app = app_over()
    events = []
    app.bridge.index_event.connect(events.append)
    app.indexing.index([str(docs)])
    qtbot.waitUntil(lambda: any(e.kind == "file" and e.files_done >= 2 for e in events), timeout=60000)
    pid = app.indexing.proc.processId()
    assert pid > 0 and Path(f"/proc/{pid}").exists()
    seconds = quit_and_time(app)
    assert seconds < QUIT_BOUND_S, seconds
    assert app.quit_report.clean, app.quit_report
    assert app.indexing.proc is None and not Path(f"/proc/{pid}").exists()   # ended and reaped
    # Stopped between files, or ended while storing its last batch: memory is whole either way.
    assert app.core.store.integrity_check() == []
    indexed = app.core.store.stats()
    assert indexed["sources"] < 150, indexed             # the rest is left for next time
    assert_no_bad_lines(caplog, [])


def test_quit_while_a_meeting_records_leaves_it_recoverable(qtbot, speech_app, pulse, speech_dir, caplog):
    from deskmind.core.speech.meeting import find_interrupted
    from tests.fakes.audio import speech_wav

    caplog.set_level(logging.INFO)
    app = speech_app
    app.meeting.start("Quarterly planning")
    qtbot.waitUntil(lambda: app.meeting.state == "recording", timeout=20000)
    pulse.play(speech_wav(speech_dir, "We agreed to ship the release on Friday."))
    time.sleep(0.5)
    folder = app.meeting.recorder.folder

    def recording_streams() -> list[str]:
        """Recording streams of clients (the virtual microphone's own remap stream has none)."""
        lines = pulse.pactl("list", "short", "source-outputs").stdout.splitlines()
        return [ln for ln in lines if ln.split("\t")[2] != "-"]

    assert recording_streams()
    seconds = quit_and_time(app)
    assert seconds < 3.0, seconds                        # no transcription on the way out
    assert app.quit_report.clean, app.quit_report
    assert not recording_streams()                       # the microphone is closed
    found = find_interrupted(folder.path.parent)
    assert [f.id for f in found] == [folder.id] and found[0].data["status"] == "interrupted"
    assert found[0].segments() and all((folder.path / s.file).stat().st_size > 44 for s in found[0].segments())
    # recoverable: the next start's recovery transcribes and saves it
    result = app.speech.recover(found[0])
    text = app.core.store.document_text(result.source_id)
    assert "friday" in text.lower(), text
    assert not find_interrupted(folder.path.parent)
    assert_no_bad_lines(caplog, [])


def in_own_loop(coro):
    """A plain asyncio loop on a thread of its own (the Qt tests' loop runs on this one)."""
    out = []
    t = threading.Thread(target=lambda: out.append(asyncio.run(coro)))
    t.start()
    t.join(30)
    return out[0]


def test_a_step_that_hangs_is_left_behind_within_the_bound():
    from deskmind.ui.shutdown import QuitStep, in_daemon_thread, run_steps

    order = []

    async def hangs():
        order.append("hangs")
        await asyncio.sleep(30)

    def blocks():
        order.append("blocks")
        time.sleep(30)

    steps = [QuitStep("first", lambda: order.append("first")), QuitStep("stuck", hangs),
             QuitStep("blocking", lambda: in_daemon_thread(blocks, "test")),
             QuitStep("broken", lambda: 1 / 0), QuitStep("last", lambda: order.append("last"))]
    t0 = time.monotonic()
    report = in_own_loop(run_steps(steps, bound_s=1.0))
    assert time.monotonic() - t0 < 1.8
    assert order == ["first", "hangs"]                   # no time was left for the rest
    assert report.overran == ["stuck", "blocking", "broken", "last"]
    report = in_own_loop(run_steps(
        [QuitStep("stuck", lambda: in_daemon_thread(blocks, "test")), QuitStep("broken", lambda: 1 / 0),
         QuitStep("last", lambda: order.append("last"))], bound_s=5.0, step_bound_s=0.5))
    assert report.overran == ["stuck"] and report.failed == ["broken"] and order[-1] == "last"


def test_the_last_resort_ends_a_process_that_does_not_exit_and_says_why(caplog):
    from deskmind.ui.shutdown import FORCED_EXIT_CODE, arm_last_resort

    exits = []
    arm_last_resort(0.2, exit_now=exits.append)
    deadline = time.monotonic() + 5
    while not exits and time.monotonic() < deadline:
        time.sleep(0.02)
    assert exits == [FORCED_EXIT_CODE]
    assert any("exiting now" in r.getMessage() for r in caplog.records)
    exits.clear()
    arm_last_resort(0.2, exit_now=exits.append).set()     # quitting finished in time: disarmed
    time.sleep(0.4)
    assert exits == []


def test_quit_during_start_up_drops_what_workers_finish_later(qtbot, core, qloop, caplog):
    """Quit before the speech service is built (a worker imports Whisper): when that worker
    finishes, nothing is built on the quit app and nothing fails."""
    from deskmind.ui.app import DesktopApp

    app = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                     hub_kw={"targets": (), "embedded": None, "secrets": SecretStore(environ={})})
    built = []
    real_submit = app.workers.submit

    def watch_submit(fn, *a, **kw):
        fut = real_submit(fn, *a, **kw)
        if getattr(fn, "__name__", "") == "make_speech":
            built.append(fut)
        return fut

    app.workers.submit = watch_submit
    assert app.start(hotkeys=False)
    qtbot.waitUntil(lambda: bool(built), timeout=5000)
    assert not built[0].done()
    close_app(app)
    qtbot.waitUntil(built[0].done, timeout=30000)
    qtbot.wait(200)                                      # any result would be delivered by now
    assert app.talk is None and app.meeting is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
