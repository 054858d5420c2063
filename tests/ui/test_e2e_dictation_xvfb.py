"""Dictation end to end under Xvfb: the real app, a real text window in another process, the
dictate key held with xdotool while espeak-ng speech plays into the PulseAudio virtual
microphone from the moment of key-down. The words (the first included) land in the window,
the person's clipboard is what it was, the note is in memory and the delivery is audited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.fakes.audio import MIC_SINK, have, speech_wav, start_pulse
from tests.fakes.text_window import TextWindow
from tests.ui.xharness import ROOT, AppProcess, XSession, missing_tools

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(bool(missing_tools() or have("espeak-ng", "sox", "pulseaudio", "xprop")),
                                 reason="needs Xvfb, xdotool, xprop, PulseAudio, espeak-ng and sox")]

SAID = "Remember to water the tomatoes in the garden."
LONG = ("Remember to water the tomatoes in the garden. The plumber comes on Thursday at nine "
        "to fix the kitchen sink. Buy new running shoes and book the dentist for next week. "
        "Call the bank about the mortgage and ask for the new interest rate.")
KEY = "ctrl+shift+F11"
CLIP = "what the clipboard held before"


def words(text: str) -> set[str]:
    return {w.strip(".,!?;:'\"").lower() for w in text.split()}


@pytest.fixture(scope="module")
def world(tmp_path_factory, qapp):
    home = tmp_path_factory.mktemp("dictation-home")
    (home / "config").mkdir(parents=True)
    # No model server: the note clean-up must not wait on one.
    (home / "config" / "settings.toml").write_text("[speech]\nclean_up_notes = false\n")
    pulse = start_pulse()
    x = XSession().start()
    app = AppProcess(x, home, extra_env={"PULSE_SERVER": pulse.env["PULSE_SERVER"]}).start()
    window = None
    try:
        app.wait_for(lambda s: any(h["action"] == "dictate" and h["armed"] and h["mode"] == "hold"
                                   for h in s.get("hotkeys", []))
                     and (s.get("dictation") or {}).get("preroll_kept_s", 0) >= 0.5, timeout=90,
                     what="the dictate key held-to-talk and the pre-roll armed")
        window = TextWindow(x.env(), "dm-e2e-dictation")
        yield {"x": x, "app": app, "pulse": pulse, "home": home, "window": window,
               "speech": tmp_path_factory.mktemp("dictation-speech")}
    finally:
        if window is not None:
            window.close()
        code = app.stop()
        x.stop()
        pulse.close()
        assert code == 0, app.log.read_text()[-2000:]


def hold_and_speak(world, wav) -> dict:
    x, app, pulse = world["x"], world["app"], world["pulse"]
    before = (app.status().get("dictation") or {}).get("last")
    x.xdotool("keydown", KEY)
    try:
        if wav is not None:
            pulse.play(wav, MIC_SINK)           # speech starts at key-down
        else:
            time.sleep(1.5)
        time.sleep(0.3)
    finally:
        x.xdotool("keyup", KEY)
    st = app.wait_for(lambda s: s["dictation"]["state"] == "idle" and s["dictation"]["last"] not in (None, before),
                      timeout=60, what="the dictation delivered")
    return st


def deskmind(world, *args: str) -> str:
    # The memory the app opened when the module started (a test may have moved DESKMIND_DB).
    env = {k: v for k, v in os.environ.items() if k != "DESKMIND_DB"}
    env.update({k: v for k, v in world["app"].env.items() if k == "DESKMIND_DB"})
    return subprocess.run([sys.executable, "-m", "deskmind", *args],
                          env={**env, "DESKMIND_HOME": str(world["home"])}, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120, check=True).stdout


def test_held_key_types_the_words_including_the_first_and_keeps_the_clipboard(world):
    w = world["window"]
    w.set_clipboard(CLIP)
    w.focus()
    st = hold_and_speak(world, speech_wav(world["speech"], SAID))
    last = st["dictation"]["last"]
    w.wait_text(lambda t: "garden" in t.lower())
    typed = w.settled()
    # "Remember" is the first word; tiny.en hears "tomato" for "tomatoes" now and then.
    assert {"remember", "water", "garden"} <= words(typed) and "tomato" in typed.lower(), (typed, last)
    assert last["delivered"] and last["method"] == "type"
    assert st["hud"]["text"].startswith("Typed "), st["hud"]
    assert last["lead_ms"] is not None and last["lead_ms"] < 0   # audio from before key-down
    assert w.clipboard() == CLIP
    app = world["app"]
    app.wait_for(lambda s: s["dictation"]["last"]["note_id"] is not None, timeout=30, what="the note saved")
    found = json.loads(deskmind(world, "search", "water the garden", "--json"))
    assert any(r["source"].startswith("deskmind://note/") and "garden" in json.dumps(r).lower()
               for r in found), found
    audit = json.loads(deskmind(world, "audit", "--agent", "dictation", "--json"))
    assert audit and audit[-1]["decision"] == "allowed" and audit[-1]["tool"] == "paste"
    assert "tomato" not in audit[-1]["args_summary"].lower()   # never the text
    assert "dm-text-window" in audit[-1]["args_summary"], audit[-1]
    assert f'"chars": {len(typed)}' in audit[-1]["args_summary"], (typed, audit[-1])


def test_a_long_utterance_is_pasted_and_the_clipboard_restored(world):
    w = world["window"]
    w.set_clipboard(CLIP)
    w.focus()
    subprocess.run(["xdotool", "key", "ctrl+a", "BackSpace"], env=world["x"].env(), timeout=5)
    w.wait_text(lambda t: t == "")
    st = hold_and_speak(world, speech_wav(world["speech"], LONG))
    last = st["dictation"]["last"]
    assert last["method"] == "clipboard" and last["delivered"], last
    w.wait_text(lambda t: "rate" in t.lower())
    typed = w.settled()
    assert {"remember", "plumber", "dentist", "mortgage"} <= words(typed), typed
    assert w.clipboard() == CLIP


def test_a_long_utterance_into_a_terminal_is_pasted_with_ctrl_shift_v(world):
    term = TextWindow(world["x"].env(), "dm-e2e-terminal", terminal=True)
    try:
        term.set_clipboard(CLIP)
        term.focus()
        st = hold_and_speak(world, speech_wav(world["speech"], LONG))
        last = st["dictation"]["last"]
        assert last["method"] == "clipboard" and last["delivered"], last
        term.wait_text(lambda t: "rate" in t.lower())
        assert {"remember", "plumber", "dentist"} <= words(term.settled()), term.text
        assert term.clipboard() == CLIP
        audit = json.loads(deskmind(world, "audit", "--agent", "dictation", "--json"))
        assert '"window_class": "xterm xterm"' in audit[-1]["args_summary"], audit[-1]
    finally:
        term.close()


def test_silence_types_nothing_and_says_so(world):
    w = world["window"]
    w.focus()
    before = w.text
    st = hold_and_speak(world, None)
    assert st["dictation"]["last"]["words"] == 0
    assert st["hud"]["text"] == "No speech was heard; nothing typed"
    time.sleep(0.3)
    assert w.text == before
