"""Qt test set-up: widgets offscreen (``--onscreen`` shows them), asyncio on the Qt loop."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
qasync = pytest.importorskip("qasync")

from tests.fakes.audio import pulse, sd, speech_dir  # noqa: E402,F401  (fixtures)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--onscreen", action="store_true", help="show GUI test windows on the display")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the real app process under Xvfb with a tray host")
    config.addinivalue_line("markers", "first_run: the test expects the first-start welcome window")
    if config.getoption("--onscreen", default=False):
        os.environ["QT_QPA_PLATFORM"] = "xcb"


@pytest.fixture(autouse=True)
def _no_first_run_window(request, monkeypatch):
    """The welcome window shows on a first start; only the tests about it should see it."""
    if request.node.get_closest_marker("first_run") is None:
        monkeypatch.setattr("deskmind.ui.first_run.needed", lambda desktop: False)


@pytest.fixture(scope="session")
def qloop(qapp):
    """One qasync loop for the session; coroutines run while qtbot spins Qt events.

    Never stopped in teardown: stopping it quits the QApplication and later waits return at once.
    """
    from deskmind.ui.tasks import background_executor

    loop = qasync.QEventLoop(qapp, already_running=True)
    # As the app does: plain low-priority threads for asyncio.to_thread (qasync's QThread
    # executor also warns at interpreter exit).
    loop.set_default_executor(background_executor(4, "deskmind-async"))
    asyncio.set_event_loop(loop)
    return loop


def no_runtime_hub() -> dict:
    from deskmind.core.secrets import SecretStore

    return {"targets": (), "embedded": None, "secrets": SecretStore(environ={})}


@pytest.fixture
def desktop(core, qtbot, qloop):
    """The real composition root on a fresh home: no tray host, hotkeys not armed."""
    from deskmind.ui.app import DesktopApp

    # No runtime: no usual-port discovery, no embedded model (answers come from memory).
    app = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                     hub_kw=no_runtime_hub())
    assert app.start(hotkeys=False)
    qtbot.waitUntil(lambda: app.palette is not None, timeout=5000)
    yield app
    close_app(app)


def close_app(app, timeout_s: float = 15.0) -> None:
    """Quit the app the way the tray does (every service closed in order, on the running loop)
    and wait for it: widgets left to the final garbage collection, after the QApplication is
    gone, can abort the interpreter."""
    import time

    from PySide6.QtCore import QCoreApplication, QEvent

    app.quit()
    deadline = time.monotonic() + timeout_s
    while not app.quitting.done() and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.005)
    assert app.quitting.done(), f"quitting did not finish in {timeout_s} s"
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def remember_note(core, text: str, title: str = "note", kind: str = "note", parent_id=None,
                  privacy: str = "private", locators=None) -> int:
    """Store a Deskmind-made source with real vectors (the way notes and meetings are saved)."""
    from deskmind.core.memory.models import NewChunk, SourceDraft

    paras = [p for p in text.split("\n\n") if p.strip()]
    chunks = [NewChunk(p, (locators or [{}] * len(paras))[i]) for i, p in enumerate(paras)]
    draft = SourceDraft(uri=f"deskmind://{kind}/{uuid.uuid4()}", kind=kind, title=title, text=text,
                        privacy=privacy, parent_id=parent_id, chunks=chunks)
    return core.remember(draft)


@pytest.fixture
def speech_app(core, qtbot, qloop, sd, whisper_engine):
    """The app over the real speech core: the test's PulseAudio microphone, Whisper tiny.en."""
    from deskmind.core.speech import Speech
    from deskmind.ui.app import DesktopApp

    speech = Speech(core, sd=sd, engine=whisper_engine, system_source=lambda: None)
    app = DesktopApp(core, tray_available=False, speech=speech, hub_kw=no_runtime_hub(),
                     instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}")
    assert app.start(hotkeys=False)
    qtbot.waitUntil(lambda: app.talk is not None and app.meeting is not None, timeout=10000)
    yield app
    close_app(app)


@pytest.fixture(scope="session")
def whisper_engine():
    """One real Whisper tiny.en engine for the session."""
    from deskmind.core import speech
    engine = speech.TranscriptionEngine(speech.SpeechSettings())
    engine.model()
    yield engine
    engine.close()
