"""Shared test set-up: every test gets its own DESKMIND_HOME; expensive models load once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports Qt or keyring: no real display, no real keyring for unit tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")


@pytest.fixture(autouse=True)
def deskmind_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DESKMIND_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory):
    """The real default embedder (all-MiniLM-L6-v2 ONNX), loaded once for the session."""
    from deskmind.core.embed.base import EmbedderSpec, create_embedder

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
