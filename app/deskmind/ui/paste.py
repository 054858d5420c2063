"""Paste an answer into the app that was focused before the palette opened.

X11 only, through xdotool (remember the window when the palette opens; later re-activate it and
send Ctrl+V). Wayland forbids this by design; Windows and macOS would need their own calls.
Whether the quick-ask agent may paste at all is the permission core's decision, asked by the app.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

log = logging.getLogger(__name__)


class PreviousWindow:
    def __init__(self, xdotool: str | None = None) -> None:
        self.xdotool = xdotool or shutil.which("xdotool")
        self.window: str | None = None

    @property
    def supported(self) -> bool:
        return bool(self.xdotool) and bool(os.environ.get("DISPLAY")) and os.environ.get("XDG_SESSION_TYPE") != "wayland"

    def remember(self) -> str | None:
        """Blocking (a subprocess): call from a worker."""
        if not self.supported:
            return None
        try:
            out = subprocess.run([self.xdotool, "getactivewindow"], capture_output=True, text=True, timeout=1)
            self.window = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError) as exc:
            log.info("cannot read the active window: %s", exc)
            self.window = None
        return self.window

    def paste(self) -> None:
        """Blocking: re-focus the remembered window and send Ctrl+V (clipboard already set)."""
        if not (self.supported and self.window):
            raise RuntimeError("no previous window to paste into")
        subprocess.run([self.xdotool, "windowactivate", "--sync", self.window], timeout=2, check=True)
        subprocess.run([self.xdotool, "key", "--clearmodifiers", "ctrl+v"], timeout=2, check=True)
