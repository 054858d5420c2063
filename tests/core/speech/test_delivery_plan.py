import pytest

from deskmind.core.speech.delivery_plan import MAX_TYPED_CHARS, choose, is_terminal, paste_keys_for


@pytest.mark.parametrize("wm_class", ['"xterm", "XTerm"', "gnome-terminal-server Gnome-terminal",
                                      "kitty", "Alacritty"])
def test_terminals_are_found_by_window_class_and_paste_with_ctrl_shift_v(wm_class):
    assert is_terminal(wm_class)
    assert paste_keys_for(wm_class) == "ctrl+shift+v"


@pytest.mark.parametrize("wm_class", ['"gedit", "Gedit"', "Navigator Firefox", "", None])
def test_other_windows_paste_with_ctrl_v(wm_class):
    assert not is_terminal(wm_class)
    assert paste_keys_for(wm_class) == "ctrl+v"


def test_x11_types_short_ascii_with_xdotool():
    d = choose("x11", {"xdotool"}, "hello world", "gedit Gedit")
    assert (d.method, d.paste_keys) == ("type", "")


def test_x11_pastes_non_ascii_and_long_text_with_the_window_s_shortcut():
    assert choose("x11", {"xdotool"}, "café", "gedit Gedit").method == "clipboard"
    long = choose("x11", {"xdotool"}, "a" * (MAX_TYPED_CHARS + 1), "xterm XTerm")
    assert (long.method, long.paste_keys) == ("clipboard", "ctrl+shift+v")


def test_x11_without_xdotool_says_so():
    d = choose("x11", set(), "hi", None)
    assert d.method == "notify" and "xdotool is not installed" in d.reason


def test_wayland_prefers_the_portal_then_wtype_then_ydotool_then_notifies():
    assert choose("wayland", {"wtype", "ydotool"}, "hi", None, portal=True).method == "portal"
    assert choose("wayland", {"wtype", "ydotool"}, "hi", None).method == "wtype"
    assert choose("wayland", {"ydotool"}, "hi", None).method == "ydotool"
    d = choose("wayland", set(), "hi", None)
    assert d.method == "notify" and "no portal, wtype or ydotool" in d.reason


def test_an_unknown_session_is_named():
    assert "unknown session type 'tty'" in choose("tty", {"xdotool"}, "hi", None).reason
