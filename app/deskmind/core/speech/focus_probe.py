"""The focused X11 window and its class (WM_CLASS), read with xdotool and xprop.

Dictation notes the window that had focus at key-down, and chooses the paste shortcut from its
class (terminals paste on Ctrl+Shift+V). Each call is bounded in time; a tool that is missing,
hangs or prints something unexpected gives ``None``, never an exception.
"""

from __future__ import annotations

import re
import shutil
import subprocess

TIMEOUT_S = 2.0
_CLASS_RE = re.compile(r'WM_CLASS\(STRING\)\s*=\s*(.+)')


def _run(args: list[str], env: dict | None) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    except (subprocess.TimeoutExpired, OSError):
        return None
    return out.stdout[:4096] if out.returncode == 0 else None


def focused_window(env: dict | None = None) -> int | None:
    """The X window id with keyboard focus, or None (no display, no focus, no xdotool)."""
    out = _run(["xdotool", "getwindowfocus"], env)
    if out is None or not out.strip().isdigit():
        return None
    wid = int(out.strip())
    return wid if wid > 1 else None  # 0 = None and 1 = PointerRoot: nothing has focus


def window_class(wid: int, env: dict | None = None) -> str | None:
    """WM_CLASS of ``wid`` as 'instance Class', or None when the window has none."""
    out = _run(["xprop", "-id", str(wid), "WM_CLASS"], env)
    m = _CLASS_RE.search(out or "")
    if not m:
        return None
    parts = [p.strip().strip('"') for p in m.group(1).split(",")]
    return " ".join(p for p in parts if p) or None
