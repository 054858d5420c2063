"""Capturing a new hotkey in Settings → Hotkeys, as a person does it, under Xvfb.

The real app process with a tray host and the real pynput/X11 hotkey backend: the person clicks
"Open the palette", presses Ctrl+Alt+K and clicks elsewhere while the backend re-arms (it taps
Shift to check that key events arrive). The field keeps the combination, desktop.toml keeps it,
and after a restart the new hotkey opens the palette.
"""

from __future__ import annotations

import time
import tomllib

import pytest

from tests.ui.xharness import ROOT, AppProcess, XSession, center, missing_tools, settings_page

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")]

ARTIFACTS = ROOT / "test-artifacts"


def armed(st: dict, action: str, combo: str) -> bool:
    return any(h["action"] == action and h["combo"] == combo and h["armed"] for h in st["hotkeys"])


@pytest.fixture
def home(tmp_path):
    (tmp_path / "config").mkdir()
    # No model server is needed here: keep start-up to the tray, the palette and the hotkeys.
    (tmp_path / "config" / "routing.toml").write_text("[defaults]\ndiscover = false\n")
    return tmp_path


def test_captured_hotkey_survives_rearm_focus_out_and_restart(home):
    x = XSession().start()
    app = AppProcess(x, home).start()
    try:
        app.wait_for(lambda s: s.get("tray") and s["tray"]["geometry"][2] > 0 and s["palette"]["built"]
                     and armed(s, "palette", "<ctrl>+<alt>+<space>"), timeout=60,
                     what="tray, palette and the pynput hotkeys armed")
        st = settings_page(x, app, "Hotkeys")
        field = st["hotkey_fields"]["palette"]
        assert field["text"] == "Ctrl+Alt+Space"
        x.xdotool("mousemove", *center(field["rect"]), "click", "1")
        app.wait_for(lambda s: s["hotkey_fields"]["palette"]["focus"], timeout=10, what="the field focused")
        # Keys pressed in the field are for the field: the palette's own hotkey does not open it.
        x.xdotool("key", "--delay", "0", "ctrl+alt+space")
        time.sleep(0.7)
        st = app.status()
        assert not st["palette"]["visible"] and st["hotkey_fields"]["palette"]["focus"], st["palette"]
        x.xdotool("key", "--delay", "0", "ctrl+alt+k")
        # The backend re-arms with the new binding (its self-check taps Shift on the display).
        st = app.wait_for(lambda s: armed(s, "palette", "<ctrl>+<alt>+k"), timeout=20,
                          what="Ctrl+Alt+K armed")
        time.sleep(0.5)
        assert st["hotkey_fields"]["palette"]["text"] == "Ctrl+Alt+K", st["hotkey_fields"]
        # Click elsewhere: the field loses focus and saves what it shows.
        x.xdotool("mousemove", *map(str, st["settings_nav"]["Hotkeys"]), "click", "1")
        st = app.wait_for(lambda s: not s["hotkey_fields"]["palette"]["focus"], timeout=10, what="focus out")
        time.sleep(1.5)   # any re-arm after the focus-out has finished its Shift tap
        st = app.status()
        x.screenshot(ARTIFACTS / "settings-hotkey-captured.png")
        assert st["hotkey_fields"]["palette"]["text"] == "Ctrl+Alt+K", st["hotkey_fields"]
        assert armed(st, "palette", "<ctrl>+<alt>+k"), st["hotkeys"]
        saved = tomllib.loads((home / "config" / "desktop.toml").read_text())
        assert saved["hotkeys"]["bindings"]["palette"] == "<ctrl>+<alt>+k"
    finally:
        code = app.stop()
    assert code == 0, app.log.read_text()[-2000:]

    again = AppProcess(x, home).start()
    try:
        again.wait_for(lambda s: s.get("tray") and s["palette"]["built"] and armed(s, "palette", "<ctrl>+<alt>+k"),
                       timeout=60, what="Ctrl+Alt+K armed after the restart")
        x.xdotool("key", "--delay", "0", "ctrl+alt+k")
        again.wait_for(lambda s: s["palette"]["visible"], timeout=10, what="the palette from Ctrl+Alt+K")
    finally:
        code = again.stop()
        x.stop()
    assert code == 0, again.log.read_text()[-2000:]
