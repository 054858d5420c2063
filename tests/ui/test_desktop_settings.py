from __future__ import annotations

import pytest

from deskmind.core.errors import UserInputError
from deskmind.ui.desktop_settings import (DEFAULT_HOTKEYS, DesktopSettings, load_desktop_settings,
                                          save_desktop_settings)
from deskmind.ui.hotkeys.combos import ComboError, check_bindings, display, normalize, to_pynput


def test_round_trip_and_defaults(tmp_path):
    path = tmp_path / "desktop.toml"
    assert load_desktop_settings(path).hotkeys.bindings == DEFAULT_HOTKEYS
    s = DesktopSettings()
    s.hotkeys.bindings["talk"] = "<ctrl>+<shift>+<f9>"
    s.hotkeys.bindings["meeting"] = ""
    s.hotkeys.talk_mode = "toggle"
    save_desktop_settings(s, path)
    again = load_desktop_settings(path)
    assert again.hotkeys.bindings["talk"] == "<ctrl>+<shift>+<f9>"
    assert again.binding("meeting") == ""          # disabled stays disabled
    assert again.hotkeys.talk_mode == "toggle"


def test_bad_file_says_where(tmp_path):
    path = tmp_path / "desktop.toml"
    path.write_text('[hotkeys]\ntalk_mode = "sometimes"\n')
    with pytest.raises(UserInputError, match="talk_mode"):
        load_desktop_settings(path)
    path.write_text("[hotkeys\n")
    with pytest.raises(UserInputError, match="desktop.toml"):
        load_desktop_settings(path)


def test_defaults_do_not_collide():
    assert all(p is None for p in check_bindings(DEFAULT_HOTKEYS).values())


def test_combo_rules():
    assert normalize("<alt>+<ctrl>+J") == "ctrl+alt+j"
    assert to_pynput("ctrl+alt+space") == "<ctrl>+<alt>+<space>"
    assert display("<ctrl>+<alt>+j") == "Ctrl+Alt+J"
    assert normalize("<f9>") == "f9"                 # function keys may stand alone
    with pytest.raises(ComboError, match="modifier"):
        normalize("j")
    with pytest.raises(ComboError, match="only one"):
        normalize("<ctrl>+a+b")
    problems = check_bindings({"palette": "<ctrl>+<alt>+t", "talk": "<ctrl>+<alt>+j",
                               "meeting": "<alt>+<ctrl>+j"})
    assert "terminal" in problems["palette"]
    assert problems["talk"] is None and "already bound to talk" in problems["meeting"]


def test_the_running_apps_desktop_file_writes_each_change_whole(tmp_path):
    from deskmind.ui.desktop_settings import DesktopSettingsFile, load_desktop_settings

    f = DesktopSettingsFile(tmp_path)
    f.set_hotkeys({"palette": "<ctrl>+<alt>+k"}, "toggle")
    f.set_first_run_seen()
    again = load_desktop_settings(tmp_path / "desktop.toml")
    assert again.hotkeys.bindings["palette"] == "<ctrl>+<alt>+k" and again.hotkeys.talk_mode == "toggle"
    assert again.first_run_seen and f.settings.first_run_seen
