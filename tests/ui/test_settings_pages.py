"""Settings pages over the real routing file, runtime hub and keyring-free secret store."""

from __future__ import annotations

from tests.ui.conftest import close_app  # noqa: E402

import os
import tomllib
import uuid

import pytest

import deskmind.core.ask.pipeline  # noqa: E402,F401

from deskmind.core.runtimes.base import Timeouts  # noqa: E402
from deskmind.core.secrets import SecretStore  # noqa: E402
from tests.fakes.llm_server import FakeLLMServer  # noqa: E402

FAST = Timeouts(connect=1.0, first_token=5.0, stall=3.0, request=10.0)


@pytest.fixture
def app(core, qtbot, qloop):
    from deskmind.ui.app import DesktopApp

    a = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                   hub_kw={"targets": (), "embedded": None, "timeouts": FAST,
                           "secrets": SecretStore(environ={})})
    assert a.start(hotkeys=False)
    qtbot.waitUntil(lambda: a.palette is not None and a.talk is not None, timeout=15000)
    yield a
    close_app(a)


def routing(app) -> dict:
    return tomllib.loads((app.core.paths.config_dir / "routing.toml").read_text())


def test_runtimes_add_and_test_and_models(qtbot, app):
    w = app.show_window("settings")
    assert list(w.pages) == ["Runtimes", "Models", "Model files", "Routing", "Agents", "Tools", "Privacy", "Gateway",
                             "Hotkeys", "Indexing", "Speech", "Storage"]
    page = w.pages["Runtimes"]
    with FakeLLMServer(models=["llama3.2:3b"]) as srv:
        page.name.setText("box")
        page.kind.setCurrentText("ollama")
        page.url.setText(srv.url)
        assert page.add()
        assert routing(app)["providers"]["box"]["url"] == srv.url
        assert "# Deskmind routing rules" in (app.core.paths.config_dir / "routing.toml").read_text()  # comments kept
        page.test_btn.click()
        qtbot.waitUntil(lambda: "answering" in page.status.text(), timeout=10000)
        rows = {page.table.item(r, 0).text(): page.table.item(r, 3).text() for r in range(page.table.rowCount())}
        assert rows["box"].startswith("✔") and "llama3.2:3b" in page.table.item(0, 4).text()
    page.name.setText("")
    assert not page.add() and "name and a URL" in page.status.text()
    models = w.pages["Models"]
    models.edits["general"].setText("box:llama3.2:3b, auto")
    assert models.save("general")
    assert routing(app)["classes"]["general"] == ["box:llama3.2:3b", "auto"]


def test_routing_editor_validates_and_explains(qtbot, app, qloop):
    w = app.show_window("settings")
    page = w.pages["Routing"]
    good = page.editor.toPlainText()
    page.editor.setPlainText(good + "\n[[rules]]\nname = \"bad\"\nzones = [\"moon\"]\n")
    qtbot.waitUntil(lambda: "✘" in page.verdict.text(), timeout=3000)
    assert "moon" in page.verdict.text() and "routing.toml:" in page.verdict.text()
    assert not page.save_btn.isEnabled()
    page.editor.setPlainText(good)
    qtbot.waitUntil(lambda: "valid" in page.verdict.text(), timeout=3000)
    assert page.save()
    page.prompt.setText("what is my bank pin")
    page.privacy.setCurrentText("secret")
    page.test_btn.click()
    qtbot.waitUntil(lambda: "Rule:" in page.explanation.text(), timeout=10000)
    assert "secret-stays-on-machine" in page.explanation.text()


def test_agents_matrix_grants_paste_live(qtbot, app, qloop, monkeypatch):
    from deskmind.ui.paste import PreviousWindow

    # Pasting needs X11 and xdotool; whether the agent may paste is what changes here.
    monkeypatch.setenv("DISPLAY", os.environ.get("DISPLAY") or ":0")
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    app.previous_window = PreviousWindow(xdotool="xdotool")
    p = app.palette
    p.input.setText("anything about keys?")
    p.submit()
    qtbot.waitUntil(lambda: p.task is not None and p.task.done() and bool(p.answer), timeout=20000)
    assert not p.paste_btn.isEnabled() and "may not paste" in p.paste_btn.toolTip()
    w = app.show_window("settings")
    page = w.pages["Agents"]
    box = page.cell("quick-ask", "paste")
    assert box is not None and not box.isChecked()
    box.setChecked(True)
    assert routing(app)["agents"]["quick-ask"]["paste"] is True
    # No new question and no restart: the Paste button follows the matrix.
    qtbot.waitUntil(p.paste_btn.isEnabled, timeout=5000)
    assert p.paste_btn.toolTip() == "" and app.ask.may("paste")
    box.setChecked(False)
    qtbot.waitUntil(lambda: not p.paste_btn.isEnabled(), timeout=5000)
    assert not app.ask.may("paste")


def test_privacy_ceiling_and_ledger(qtbot, app):
    w = app.show_window("settings")
    page = w.pages["Privacy"]
    page.ceilings["home"].setCurrentText("personal")
    assert routing(app)["zones"]["ceiling"]["home"] == "personal"
    w.show_page("Privacy")
    qtbot.waitUntil(lambda: "Nothing has left" in page.status.text(), timeout=5000)
    assert page.ledger.rowCount() == 0
    # Requests that left are listed newest first, with what they carried.
    from deskmind.core.routing.ledger import EgressLedger

    ledger = EgressLedger(app.core.store, zone_of={"acme": "cloud"})
    first = ledger.record(provider="acme", host="api.acme.test", model="big-1", rule="r",
                          body=b"x" * 120, item_ids=[7, 3])
    ledger.finish(first, bytes_in=55, status="ok")
    ledger.record(provider="acme", host="api.acme.test", model="big-2", rule="r",
                  body=b"y" * 40, item_ids=[])
    page.refresh()
    qtbot.waitUntil(lambda: page.ledger.rowCount() == 2, timeout=5000)
    cells = [[page.ledger.item(r, c).text() for c in range(1, 7)] for r in range(2)]
    assert cells == [["acme", "api.acme.test", "cloud", "big-2", "40/—", "none"],
                     ["acme", "api.acme.test", "cloud", "big-1", "120/55", "3, 7"]]
    assert "Nothing has left" not in page.status.text()
    assert "2 requests" in page.status.text()


def test_speech_page_saves_and_applies_vocabulary(qtbot, app):
    w = app.show_window("settings")
    qtbot.waitUntil(lambda: "Speech" in w.pages, timeout=10000)
    page = w.pages["Speech"]
    page.vocab.setText("Deskmind, Kubernetes")
    assert page.save(), page.status.text()
    assert app.speech.settings.vocabulary == ["Deskmind", "Kubernetes"]
    data = tomllib.loads(app.core.paths.settings_path.read_text())
    assert data["speech"]["vocabulary"] == ["Deskmind", "Kubernetes"]


def test_speech_page_says_which_models_note_clean_up_is_off_for(qtbot, app):
    """A model whose clean-ups were rejected three times in a row is named on the page, with
    why; "Try note clean-up again" turns it back on for the next note."""
    from PySide6.QtCore import Qt

    rec = app.speech.cleanup_record
    for _ in range(3):
        rec.rejected("embedded:smollm2-135m-instruct", "it kept 20% of the words said")
    w = app.show_window("settings")
    qtbot.waitUntil(lambda: "Speech" in w.pages, timeout=10000)
    page = w.pages["Speech"]
    assert page.cleanup_state.isVisibleTo(page) and page.cleanup_retry.isVisibleTo(page)
    assert page.cleanup_state.text() == (
        "Note clean-up is off for embedded:smollm2-135m-instruct: its last 3 clean-ups were not "
        "used (it kept 20% of the words said). Notes are saved as transcribed.")
    qtbot.mouseClick(page.cleanup_retry, Qt.MouseButton.LeftButton)
    assert rec.off_models() == frozenset() and not page.cleanup_state.isVisibleTo(page)
    assert "tried again" in page.status.text()


@pytest.mark.usefixtures("on_both_backends")
def test_storage_page_says_where_the_memory_is(qtbot, app):
    st = app.core.store.stats()
    page = app.show_window("settings").pages["Storage"]
    page.refresh()
    qtbot.waitUntil(lambda: "sources" in page.stats.text(), timeout=10000)
    first = page.stats.text().splitlines()[0]
    if app.core.store.backend == "postgres":
        assert first == (f"Memory: PostgreSQL {st['server_version']} with pgvector {st['pgvector']}, "
                         f"database {st['database']} at {st['server']} ({app.core.store.url})")
    else:
        assert first == f"Memory: {app.core.paths.data_dir / 'memory.db'}"
