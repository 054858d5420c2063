"""End to end under Xvfb with a tray host: the real app process, real hotkeys and clicks.

Hotkey → palette → a streamed answer from a loopback Ollama-protocol server → the citation opens
in the memory browser; the tray menu starts and stops a meeting recorded from a PulseAudio
virtual microphone; settings open from the tray. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ui.xharness import ROOT, AppProcess, XSession, missing_tools

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")]

ARTIFACTS = ROOT / "test-artifacts"
REPLY = "The spare key is under the **blue flower pot** [1]."


def center(rect: list[int]) -> tuple[str, str]:
    x, y, w, h = rect
    return str(x + w // 2), str(y + h // 2)


@pytest.fixture(scope="module")
def world(tmp_path_factory, qapp):
    from tests.fakes.audio import have, start_pulse, speech_wav
    from tests.fakes.llm_server import Faults, FakeLLMServer, Reply

    home = tmp_path_factory.mktemp("e2e-home")
    docs = tmp_path_factory.mktemp("e2e-docs")
    (docs / "house.md").write_text("# House\n\nThe spare house key is under the blue flower pot by the door.\n")
    srv = FakeLLMServer(reply=Reply(REPLY), faults=Faults(token_delay=0.03)).start()
    (home / "config").mkdir(parents=True)
    (home / "config" / "routing.toml").write_text(f"""
[defaults]
discover = false

[providers.local]
kind = "ollama"
url = "{srv.url}"

[classes]
general = ["local:fake-model:1b"]

[[rules]]
name = "local-first"
class = "general"
zones = ["machine"]
""")
    env = {"DESKMIND_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "deskmind", "index", str(docs), "--no-progress"],
                   env={**__import__("os").environ, **env}, check=True, capture_output=True, timeout=120)
    pulse = None
    extra: dict[str, str] = {}
    if not have("pulseaudio", "pactl", "paplay", "pacat", "espeak-ng", "sox"):
        pulse = start_pulse()
        extra = {"PULSE_SERVER": pulse.env["PULSE_SERVER"]}
    x = XSession().start()
    app = AppProcess(x, home, extra_env=extra).start()
    try:
        app.wait_for(lambda s: s.get("tray") and s["tray"]["geometry"][2] > 0 and s["palette"]["built"]
                     and s["hotkeys"], timeout=60, what="tray, palette and hotkeys")
        yield {"x": x, "app": app, "srv": srv, "pulse": pulse, "home": home,
               "wav": speech_wav(tmp_path_factory.mktemp("e2e-speech"),
                                 "Welcome everyone. We agreed to ship on Friday.") if pulse else None}
    finally:
        code = app.stop()
        x.stop()
        srv.stop()
        if pulse is not None:
            pulse.stop()
        assert code == 0, app.log.read_text()[-2000:]


def test_hotkey_palette_streamed_answer_and_citation(world):
    x, app = world["x"], world["app"]
    st = app.status()
    assert all(h["armed"] for h in st["hotkeys"] if h["mode"] != "off"), st["hotkeys"]
    x.xdotool("key", "--delay", "0", "ctrl+alt+space")   # how fast: bench/palette.py
    st = app.wait_for(lambda s: s["palette"]["visible"] and s["palette"]["input_focus"], timeout=10,
                      what="palette visible with focus")
    x.xdotool("type", "--delay", "8", "where is the spare key?")
    x.xdotool("key", "Return")
    app.wait_for(lambda s: s["palette"]["streaming"] or s["palette"]["answer"], timeout=20, what="answer starts")
    st = app.wait_for(lambda s: not s["palette"]["streaming"] and s["palette"]["answer"] == REPLY, timeout=30,
                      what="answer complete")
    assert "machine · fake-model:1b" in st["palette"]["route"]
    assert st["palette"]["citations"][0] == "House"
    x.screenshot(ARTIFACTS / "palette.png")
    x.xdotool("mousemove", str(st["palette"]["cite1"][0]), str(st["palette"]["cite1"][1]), "click", "1")
    st = app.wait_for(lambda s: s["windows"].get("browser", {}).get("visible") and s.get("browser_item") == "House",
                      timeout=15, what="the cited source open in the browser")
    x.screenshot(ARTIFACTS / "memory-browser.png")
    x.xdotool("key", "--delay", "0", "ctrl+alt+space")     # the hotkey again: palette back up
    app.wait_for(lambda s: s["palette"]["visible"], timeout=10, what="palette again")
    x.xdotool("key", "Escape")
    app.wait_for(lambda s: not s["palette"]["visible"], timeout=10, what="Esc hides the palette")


def open_tray_menu(x: XSession, app: AppProcess) -> dict:
    st = app.status()
    tx, ty = center(st["tray"]["geometry"])
    x.xdotool("mousemove", tx, ty, "click", "3")
    return app.wait_for(lambda s: s["menu"]["visible"], timeout=10, what="tray menu")


def click_menu(x: XSession, st: dict, prefix: str) -> None:
    rect = next(r for t, r in st["menu"]["actions"].items() if t.startswith(prefix))
    x.xdotool("mousemove", *center(rect), "click", "1")


def test_tray_menu_meeting_from_virtual_microphone(world):
    x, app, pulse = world["x"], world["app"], world["pulse"]
    if pulse is None:
        pytest.skip("needs pulseaudio, espeak-ng and sox")
    st = open_tray_menu(x, app)
    assert list(st["menu"]["actions"])[:2] == ["Ask…", "Start meeting"]
    x.screenshot(ARTIFACTS / "tray-menu.png")
    click_menu(x, st, "Start meeting")
    app.wait_for(lambda s: s.get("meeting", {}).get("state") == "recording", timeout=20, what="meeting recording")
    assert app.status()["state"] == "meeting"
    pulse.play(world["wav"])
    time.sleep(1.2)
    st = open_tray_menu(x, app)
    assert any(t.startswith("Stop meeting (0:0") for t in st["menu"]["actions"]), st["menu"]["actions"]
    x.screenshot(ARTIFACTS / "tray-menu-meeting.png")
    click_menu(x, st, "Stop meeting")
    st = app.wait_for(lambda s: s["meeting"]["state"] == "idle" and s["meeting"]["segments"] > 0, timeout=90,
                      what="meeting saved")
    assert st["state"] == "idle" and st["meeting"]["menu_text"] == "Start meeting"


def test_settings_from_tray(world):
    x, app = world["x"], world["app"]
    st = open_tray_menu(x, app)
    click_menu(x, st, "Settings")
    st = app.wait_for(lambda s: s["windows"].get("settings", {}).get("visible"), timeout=15, what="settings")
    x.screenshot(ARTIFACTS / "settings-runtimes.png")
    for page in ("Routing", "Hotkeys"):
        x.xdotool("mousemove", *map(str, st["settings_nav"][page]), "click", "1")
        time.sleep(0.5)
        x.screenshot(ARTIFACTS / f"settings-{page.lower()}.png")
