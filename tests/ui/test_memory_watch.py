"""The running app and what others write: the memory browser lists a note another process
saved, and a memory that cannot be reached at start is said so (never swapped for a local file)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cli_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("watch-models")


def _listed(browser) -> list[str]:
    return [browser.results.item(i).text() for i in range(browser.results.count())]


@pytest.mark.usefixtures("on_both_backends")
def test_the_browser_lists_what_another_process_wrote(desktop, qtbot, deskmind_home, cli_models):
    browser = desktop.show_window("browser")
    qtbot.waitUntil(lambda: browser.status.text() == "0 result(s)", timeout=10000)
    qtbot.waitUntil(lambda: desktop.memory_watcher.version is not None, timeout=10000)
    (deskmind_home / "cache").mkdir(exist_ok=True)
    if not (deskmind_home / "cache" / "models").exists():
        (deskmind_home / "cache" / "models").symlink_to(cli_models, target_is_directory=True)
    other = subprocess.Popen(
        [sys.executable, "-m", "deskmind", "note", "--text", "Bins go out on Tuesday night.",
         "--title", "Bin day"], env=dict(os.environ), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    qtbot.waitUntil(lambda: other.poll() is not None, timeout=240000)
    out, err = other.communicate()
    assert other.returncode == 0, err
    written = time.monotonic()
    qtbot.waitUntil(lambda: any(t.startswith("Bin day") for t in _listed(browser)), timeout=5000)
    assert time.monotonic() - written < 5.0
    assert browser.refreshes >= 1


def test_an_unreachable_memory_at_start_is_said_and_no_local_file_is_made(
        core, qtbot, qloop, monkeypatch, deskmind_home, pg_url):
    from deskmind.ui.app import DesktopApp
    from tests.ui.conftest import close_app, no_runtime_hub

    monkeypatch.setenv("DESKMIND_DB", "postgresql://ana@127.0.0.1:1/mind?connect_timeout=2")
    app = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{os.getpid()}-w",
                     hub_kw=no_runtime_hub())
    seen: list[tuple[str, str]] = []
    app.tray.notified.connect(lambda title, msg: seen.append((title, msg)))
    try:
        assert app.start(hotkeys=False)  # the app starts all the same
        qtbot.waitUntil(lambda: any(t == "Memory unavailable" for t, _ in seen), timeout=20000)
        msg = next(m for t, m in seen if t == "Memory unavailable")
        assert "127.0.0.1" in msg and "could not be reached" in msg
        assert "does not fall back to a local file" in msg
        assert app.tray.state == "attention" and app.memory_error == msg
        assert not (deskmind_home / "data" / "memory.db").exists()
        # The server is back (here: the setting now names one that answers): the app says so.
        monkeypatch.setenv("DESKMIND_DB", pg_url)
        qtbot.waitUntil(lambda: any(t == "Memory available again" for t, _ in seen), timeout=30000)
        assert app.memory_error is None and app.tray.state == "idle"
        assert not (deskmind_home / "data" / "memory.db").exists()
    finally:
        close_app(app)


def test_an_item_names_the_machine_that_indexed_it(qtbot, desktop, tmp_path):
    """A file indexed here says so and offers the file; the same path indexed by another
    machine names that machine and offers nothing (the file is on the other computer)."""
    from deskmind.core.memory.backend import open_memory
    from deskmind.core.memory.machine import Machine
    from deskmind.core.memory.models import NewChunk, SourceDraft

    path = tmp_path / "boat.md"
    path.write_text("# Boat\nTwo coats of varnish.\n")
    store = desktop.core.store
    draft = SourceDraft(uri=str(path), kind="markdown", title="Boat", text="Two coats of varnish.",
                        chunks=[NewChunk("Two coats of varnish.")])
    here = store.put_source(draft)
    other = open_memory(desktop.core.memory_location(), machine=Machine("mini-pc-00000001", "mini-pc"))
    try:
        there = other.put_source(draft)
    finally:
        other.close()
    assert here != there
    browser = desktop.show_window("browser")
    for sid, label, offered in ((here, f"{store.scope.machine.name} (this machine)", True),
                                (there, "mini-pc", False)):
        browser.item_view.item = None
        browser.open_source(sid)
        qtbot.waitUntil(lambda sid=sid: browser.item_view.item is not None
                        and browser.item_view.item["source"].id == sid, timeout=10000)
        assert f"Indexed on {label}" in browser.item_view.provenance.text()
        assert (browser.item_view.item["original"] is not None) is offered
