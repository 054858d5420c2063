"""Dictation in the desktop app: the settings that govern it, the self-check line, and a
dictation where nothing can type (no X11 here): the text goes to the clipboard, and a
notification says so."""

from __future__ import annotations

import time
import tomllib
import uuid

import pytest

from deskmind.core.speech.deliver import Deliverer
from deskmind.ui.bridge import CoreBridge
from deskmind.ui.hotkeys.manager import HotkeyManager
from deskmind.ui.speech_wiring import dictation_permission
from deskmind.ui.tasks import Workers
from tests.fakes.audio import MIC_SINK, speech_wav
from tests.ui.conftest import close_app, no_runtime_hub

SAID = "Remember to water the tomatoes in the garden."


@pytest.fixture
def app(core, qtbot, qloop):
    from deskmind.ui.app import DesktopApp

    a = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                   hub_kw=no_runtime_hub())
    assert a.start(hotkeys=False)
    qtbot.waitUntil(lambda: a.palette is not None and a.talk is not None, timeout=15000)
    yield a
    close_app(a)


def test_the_dictation_agent_may_paste_by_default_and_settings_can_take_it_away(qtbot, app):
    config = app.core.paths.config_dir
    assert dictation_permission(config) is True
    page = app.show_window("settings").pages["Agents"]
    box = page.cell("dictation", "paste")
    assert box is not None and box.isChecked()
    assert not page.cell("quick-ask", "paste").isChecked()     # granted to this agent only
    box.setChecked(False)
    routing = tomllib.loads((config / "routing.toml").read_text())
    assert routing["agents"]["dictation"]["paste"] is False
    assert dictation_permission(config) is False
    (config / "routing.toml").write_text("[agents.dictation\n")  # broken: refuse, never type
    assert dictation_permission(config) is False


def test_the_hotkeys_page_has_the_dictate_key_and_the_self_check_tells_a_wayland_user(qtbot, app):
    page = app.show_window("settings").pages["Hotkeys"]
    assert page.bindings()["dictate"] == "<ctrl>+<shift>+<f11>"
    bridge = CoreBridge()
    m = HotkeyManager(bridge, Workers(bridge), {"talk": "<ctrl>+<alt>+j", "dictate": "<ctrl>+<shift>+<f11>"},
                      backend_factory=None)
    m.describe_delivery = Deliverer(None, session="wayland", tools=set()).describe
    with qtbot.waitSignal(m.checked, timeout=5000) as sig:
        m.start()
    st = {s.action: s for s in sig.args[0]}
    assert st["dictate"].detail.endswith(
        "dictation: no way to type on this Wayland desktop (no portal, wtype or ydotool): the "
        "text is put on the clipboard and a notification says so"), st["dictate"].detail
    assert "deskmind trigger dictate" in st["dictate"].detail
    assert "dictation" not in st["talk"].detail
    m.stop()


def test_the_dictate_key_clashes_like_any_other(qtbot, app):
    page = app.show_window("settings").pages["Hotkeys"]
    from deskmind.ui.settings.hotkeys_page import combo_to_sequence

    page.edits["dictate"].setKeySequence(combo_to_sequence("<ctrl>+<alt>+j"))
    assert page.apply(changed="dictate") is False
    assert "Dictate (types where the cursor is): Ctrl+Alt+J is already bound to Push to talk" in page.problem.text()
    page.edits["dictate"].setKeySequence(combo_to_sequence("<ctrl>+<alt>+d"))
    assert page.apply(changed="dictate") is False
    assert "shows the desktop" in page.problem.text()


def test_pre_roll_setting_says_what_it_means_and_turns_the_microphone_off(qtbot, speech_app):
    app = speech_app
    qtbot.waitUntil(lambda: app.speech.armed_microphone is not None and app.speech.armed_microphone.armed,
                    timeout=10000)
    page = app.show_window("settings").pages["Speech"]
    help_text = page.findChild(type(page.status), "speechPrerollHelp").text()
    assert "microphone stays open" in help_text and "indicator" in help_text
    assert page.preroll.isChecked()
    page.preroll.setChecked(False)
    assert page.save()
    qtbot.waitUntil(lambda: app.speech.armed_microphone is None, timeout=10000)
    data = tomllib.loads(app.core.paths.settings_path.read_text())
    assert data["speech"]["preroll"] is False and app.speech.settings.preroll is False


@pytest.fixture
def no_desktop_session(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)


def test_where_nothing_can_type_the_text_is_on_the_clipboard_and_a_notification_says_so(
        no_desktop_session, qtbot, speech_app, pulse, speech_dir, monkeypatch):
    from PySide6.QtGui import QGuiApplication

    app = speech_app
    notes = []
    monkeypatch.setattr(app.tray, "notify", lambda title, msg, **kw: notes.append((title, msg)))
    assert app.dictation is not None
    QGuiApplication.clipboard().setText("before")
    app.on_trigger("dictate")             # toggle: once to start...
    qtbot.waitUntil(lambda: app.dictation.state == "recording", timeout=15000)
    assert app.hud.label.text().startswith("Dictating")
    pulse.play(speech_wav(speech_dir, SAID), MIC_SINK)
    time.sleep(0.3)
    app.on_trigger("dictate")             # ...and again to stop
    qtbot.waitUntil(lambda: app.dictation.state == "idle" and app.dictation.last is not None, timeout=30000)
    r = app.dictation.last
    assert not r.delivery.delivered and "tomato" in r.text.lower()   # tiny.en: tomato(es)
    assert QGuiApplication.clipboard().text() == r.text
    assert notes and notes[-1][0] == "Dictation" and "clipboard" in notes[-1][1]
    assert r.message == ("unknown session type 'none': the text is put on the clipboard and a "
                         "notification says so")
    assert app.hud.label.text().startswith("Unknown session type 'none'")


def test_with_both_talk_keys_disabled_the_microphone_is_not_kept_open(qtbot, speech_app):
    app = speech_app
    qtbot.waitUntil(lambda: app.speech.armed_microphone is not None, timeout=10000)
    bindings = dict(app.hotkeys.bindings)
    app.apply_hotkeys({**bindings, "talk": "", "dictate": ""}, "auto")
    qtbot.waitUntil(lambda: app.speech.armed_microphone is None, timeout=10000)
    app.apply_hotkeys({**bindings, "talk": ""}, "auto")          # dictate alone is enough
    qtbot.waitUntil(lambda: app.speech.armed_microphone is not None, timeout=10000)
