"""Shared test set-up: every test gets its own DESKMIND_HOME; expensive models load once."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from pathlib import Path

import pytest

# Before anything imports Qt or keyring: no real display, no real keyring for unit tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

EXIT_GRACE_S = 60.0
_exit_status = {"code": 0}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status["code"] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A thread left blocked in native code keeps the interpreter from exiting (it joins every
    non-daemon thread, executor workers included), and a run that never ends is worse than one
    that fails: name the threads, dump their stacks and end the run as failed."""
    def guard() -> None:
        time.sleep(EXIT_GRACE_S)
        alive = [t.name for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
        sys.stderr.write(f"\nthe test run finished but the process had not exited {EXIT_GRACE_S:.0f} s "
                         f"later; threads still running: {', '.join(alive) or '(none)'}\n")
        sys.stderr.flush()
        faulthandler.dump_traceback(all_threads=True)
        os._exit(_exit_status["code"] or 1)

    threading.Thread(target=guard, daemon=True, name="exit-guard").start()


@pytest.fixture(autouse=True)
def deskmind_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DESKMIND_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory):
    """The real default embedder (all-MiniLM-L6-v2 ONNX), loaded once for the session."""
    from deskmind.core.embed.base import EmbedderSpec
    from deskmind.core.embed.factory import create_embedder

    cache = tmp_path_factory.mktemp("model-cache")
    return create_embedder(EmbedderSpec(options={"cache_dir": str(cache)}))


@pytest.fixture
def core(deskmind_home: Path, embedder):
    """A Core on a fresh DESKMIND_HOME that reuses the session's embedder."""
    from deskmind.core.app import Core

    c = Core()
    c._embedders[embedder.model_id] = embedder
    yield c
    c.close()
