"""What dictation says it will do on each desktop, and what it does where it cannot type."""

from __future__ import annotations

from deskmind.core.speech.deliver import Deliverer, Target, session_type


def test_the_session_type_comes_from_the_environment():
    assert session_type({"XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}) == "wayland"
    assert session_type({"WAYLAND_DISPLAY": "wayland-0"}) == "wayland"
    assert session_type({"DISPLAY": ":1"}) == "x11"
    assert session_type({}) == "none"


def test_the_self_check_tells_a_wayland_user_exactly_what_will_happen():
    bare = Deliverer(None, session="wayland", tools=set()).describe()
    assert bare == ("dictation: no way to type on this Wayland desktop (no portal, wtype or "
                    "ydotool): the text is put on the clipboard and a notification says so")
    assert Deliverer(None, session="wayland", tools={"wtype"}).describe() == "dictation: typed with wtype"
    assert Deliverer(None, session="wayland", tools={"ydotool"}).describe() == "dictation: typed with ydotool"


def test_the_self_check_on_x11_names_typing_and_the_restored_clipboard():
    text = Deliverer(None, session="x11", tools={"xdotool"}).describe()
    assert "typed with xdotool" in text and "clipboard is restored" in text and "Ctrl+Shift+V" in text
    assert "xdotool is not installed" in Deliverer(None, session="x11", tools=set()).describe()


def test_where_nothing_can_type_nothing_is_typed_and_the_reason_is_given():
    report = Deliverer(None, session="wayland", tools=set()).deliver("hello there", Target(None, None))
    assert not report.delivered and report.chars == 11
    assert report.message.startswith("no way to type on this Wayland desktop")
