"""Changing [speech] in settings applies to the running app: a new Whisper model replaces the
speech service when nothing records, and waits for the end of a recording otherwise."""

from __future__ import annotations

import threading
import tomllib


def _speech_page(app, qtbot):
    w = app.show_window("settings")
    qtbot.waitUntil(lambda: "Speech" in w.pages, timeout=10000)
    return w.pages["Speech"]


def test_a_model_change_waits_for_the_recording_then_replaces_the_service(qtbot, speech_app, pulse):
    app, talk = speech_app, speech_app.talk
    page = _speech_page(app, qtbot)
    first = app.speech
    app.bridge.hotkey_pressed.emit("talk")
    qtbot.waitUntil(lambda: talk.state == "recording", timeout=10000)

    page.model.setText("base.en")
    page.model_path.setText("/models/whisper-base")
    assert page.save(), page.status.text()
    assert page.status.text() == "Saved; the new model is used after the current recording"
    assert app.speech is first and first.settings.model == "tiny.en"   # the note keeps its model
    data = tomllib.loads(app.core.paths.settings_path.read_text(encoding="utf-8"))
    assert data["speech"]["model"] == "base.en"

    talk.released(hold=True)                    # the note ends; the waiting change applies
    qtbot.waitUntil(lambda: talk.state == "idle", timeout=60000)
    qtbot.waitUntil(lambda: app.speech is not first, timeout=5000)
    assert (app.speech.settings.model, app.speech.settings.model_path) == ("base.en", "/models/whisper-base")

    # Idle: the next change replaces the service at once.
    second = app.speech
    page.model.setText("tiny.en")
    page.model_path.setText("")
    assert page.save(), page.status.text()
    assert page.status.text() == "Saved; Whisper model tiny.en loads on the next recording"
    assert app.speech is not second and app.speech.settings.model == "tiny.en"
    assert app.speech.settings.model_path is None


def test_a_change_written_from_another_thread_reaches_the_service_on_the_gui_thread(qtbot, speech_app):
    app = speech_app
    service = app.speech
    applied_on: list[bool] = []
    original_apply = app.speech_follower.apply

    def apply(new):
        applied_on.append(threading.current_thread() is threading.main_thread())
        original_apply(new)

    app.speech_follower.apply = apply
    writer = threading.Thread(target=app.core.settings_store.update,
                              args=("speech", {"vocabulary": ["Deskmind", "Grafana"]}))
    writer.start()
    writer.join(30)
    qtbot.waitUntil(lambda: service.settings.vocabulary == ["Deskmind", "Grafana"], timeout=5000)
    assert applied_on == [True] and app.speech is service   # same model: the service stays
