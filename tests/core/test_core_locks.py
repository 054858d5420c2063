"""The Core's lazily built parts do not wait for one another."""

from __future__ import annotations

import threading
import time

import deskmind.core.app as app_mod
from deskmind.core.app import Core


def test_the_store_and_engines_are_reachable_while_an_embedder_is_being_built(deskmind_home, monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow_embedder(spec):  # deriving the int8 model on first use takes seconds
        started.set()
        release.wait(10)
        return object()

    monkeypatch.setattr(app_mod, "create_embedder", slow_embedder)
    with Core() as core:
        builder = threading.Thread(target=core.embedder)
        builder.start()
        try:
            assert started.wait(5)
            t0 = time.monotonic()
            assert core.store is not None
            assert core.engines is not None
            waited = time.monotonic() - t0
            assert not release.is_set()
            assert waited < 2.0, f"the store and engines waited {waited:.1f} s for the embedder"
        finally:
            release.set()
            builder.join(10)
