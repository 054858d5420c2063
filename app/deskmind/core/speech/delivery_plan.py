"""How dictated text reaches the focused window, decided from facts about the desktop.

No Qt and no subprocess here: the caller finds the session type, the tools on PATH and the
focused window's class (WM_CLASS), and this module picks the method and the paste shortcut.
Typing key by key is used only where it is reliable (X11 with xdotool, short ASCII text);
anything else goes through the clipboard, whose previous contents the caller restores.
"""

from __future__ import annotations

from dataclasses import dataclass

# Typing longer text key by key is slower than a paste and a focus change can split it.
MAX_TYPED_CHARS = 200

# WM_CLASS instance or class names (lower case) of terminals, which paste on Ctrl+Shift+V.
TERMINAL_CLASSES = frozenset({
    "xterm", "uxterm", "urxvt", "rxvt", "gnome-terminal", "gnome-terminal-server",
    "konsole", "xfce4-terminal", "terminator", "tilix", "kitty", "alacritty",
    "wezterm", "org.wezfurlong.wezterm", "foot", "st", "st-256color", "lxterminal",
    "mate-terminal", "qterminal", "sakura", "terminology", "guake", "tilda",
    "com.mitchellh.ghostty", "ghostty", "org.gnome.console", "kgx", "ptyxis",
})


@dataclass(frozen=True)
class Delivery:
    method: str  # "type" (xdotool), "wtype", "ydotool", "portal", "clipboard", "notify"
    paste_keys: str  # the shortcut sent after filling the clipboard, "" when none is sent
    reason: str  # one sentence for the hotkey self-check


def is_terminal(wm_class: str | None) -> bool:
    """True when any part of a WM_CLASS ("instance", "Class" or both) names a terminal."""
    if not wm_class:
        return False
    parts = [p.strip().strip('"').lower() for p in wm_class.replace(",", " ").split()]
    return any(p in TERMINAL_CLASSES for p in parts)


def paste_keys_for(wm_class: str | None) -> str:
    return "ctrl+shift+v" if is_terminal(wm_class) else "ctrl+v"


def choose(session: str, tools: set[str], text: str, wm_class: str | None, *,
           portal: bool = False) -> Delivery:
    """The delivery for ``text`` given the session ("x11", "wayland"), the tools on PATH
    (e.g. {"xdotool", "wtype"}), the focused window's WM_CLASS and whether the RemoteDesktop
    portal granted keyboard access."""
    keys = paste_keys_for(wm_class)
    short_ascii = text.isascii() and len(text) <= MAX_TYPED_CHARS
    if session == "x11":
        if "xdotool" not in tools:
            return Delivery("notify", "", "xdotool is not installed: the text is put on the "
                            "clipboard and a notification says so")
        if short_ascii:
            return Delivery("type", "", "typed with xdotool")
        return Delivery("clipboard", keys, f"pasted with {keys} through the clipboard "
                        "(long or non-ASCII text types slowly or wrongly)")
    if session == "wayland":
        if portal:
            return Delivery("portal", "", "typed through the RemoteDesktop portal")
        if "wtype" in tools:
            return Delivery("wtype", "", "typed with wtype")
        if "ydotool" in tools:
            return Delivery("ydotool", "", "typed with ydotool")
        return Delivery("notify", "", "no way to type on this Wayland desktop (no portal, "
                        "wtype or ydotool): the text is put on the clipboard and a "
                        "notification says so")
    return Delivery("notify", "", f"unknown session type {session!r}: the text is put on "
                    "the clipboard and a notification says so")
