"""Typing text and sending a paste shortcut into one X11 window with xdotool.

The window is the one that had focus at key-down: it is focused again first, so text never
lands in a window the person switched to while the speech was being transcribed. Every call
is bounded in time and a failure raises ``KeyInjectionError`` naming the window and the cause.
"""

from __future__ import annotations

import subprocess

from deskmind.core.errors import DeskmindError

BASE_TIMEOUT_S = 3.0
PER_CHAR_S = 0.02


class KeyInjectionError(DeskmindError):
    """xdotool could not focus the window or send the keys."""


def _xdotool(args: list[str], env: dict | None, timeout: float, what: str) -> None:
    try:
        out = subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True,
                             timeout=timeout)
    except FileNotFoundError as e:
        raise KeyInjectionError("xdotool is not installed") from e
    except subprocess.TimeoutExpired as e:
        raise KeyInjectionError(f"xdotool did not finish {what} within {timeout:.1f} s") from e
    if out.returncode != 0:
        raise KeyInjectionError(f"xdotool could not {what}: {out.stderr.strip()[:300]}")


def focus(wid: int, env: dict | None = None) -> None:
    _xdotool(["windowfocus", "--sync", str(wid)], env, BASE_TIMEOUT_S, f"focus window {wid}")


def type_into(wid: int, text: str, env: dict | None = None) -> None:
    """Focus ``wid`` and type ``text`` key by key."""
    focus(wid, env)
    _xdotool(["type", "--clearmodifiers", "--delay", "0", "--", text], env,
             BASE_TIMEOUT_S + PER_CHAR_S * len(text), f"type into window {wid}")


def press_into(wid: int, keys: str, env: dict | None = None) -> None:
    """Focus ``wid`` and press a shortcut such as 'ctrl+v' or 'ctrl+shift+v'."""
    focus(wid, env)
    _xdotool(["key", "--clearmodifiers", keys], env, BASE_TIMEOUT_S, f"press {keys} in window {wid}")
