"""Putting dictated text into the window that had focus at key-down.

The method comes from :mod:`delivery_plan` (facts: session type, tools on PATH, window class);
this module carries it out: xdotool typing, or clipboard + paste shortcut with the person's
clipboard restored, or wtype/ydotool on Wayland, or the clipboard and a message saying so.
The clipboard itself is the caller's (the desktop's, which owns it on the GUI thread): anything
with ``save``, ``put_text`` and ``restore``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from deskmind.core.speech import focus_probe, x11_keys
from deskmind.core.speech.delivery_plan import Delivery, choose
from deskmind.core.speech.x11_keys import KeyInjectionError

log = logging.getLogger(__name__)

KNOWN_TOOLS = ("xdotool", "wtype", "ydotool")
# The target app reads the clipboard after the paste key arrives, asynchronously (an X
# selection request); restoring the old contents sooner would paste those instead.
RESTORE_AFTER_S = 0.3
TOOL_TIMEOUT_S = 3.0
PER_CHAR_S = 0.02


class Clipboard(Protocol):
    def save(self) -> None: ...
    def put_text(self, text: str) -> None: ...
    def restore(self) -> bool: ...


@dataclass(frozen=True)
class Target:
    """The window that had keyboard focus at key-down (X11); None where it cannot be known."""
    window: int | None
    wm_class: str | None


@dataclass
class DeliveryReport:
    method: str           # as in Delivery.method
    delivered: bool       # the text reached the window
    chars: int
    wm_class: str | None
    message: str          # for the HUD: where the text went, or why not


def session_type(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    kind = env.get("XDG_SESSION_TYPE", "").lower()
    if kind in ("x11", "wayland"):
        return kind
    if env.get("WAYLAND_DISPLAY"):
        return "wayland"
    if env.get("DISPLAY"):
        return "x11"
    return "none"


def tools_on_path(which: Callable[[str], str | None] = shutil.which) -> set[str]:
    return {t for t in KNOWN_TOOLS if which(t)}


class Deliverer:
    """Blocking (subprocesses, a short wait before restoring the clipboard): call from a
    worker. ``env`` is the environment of the tools (DISPLAY)."""

    def __init__(self, clipboard: Clipboard | None, *, env: dict[str, str] | None = None,
                 session: str | None = None, tools: set[str] | None = None,
                 restore_after_s: float = RESTORE_AFTER_S) -> None:
        self.clipboard = clipboard
        self.env = env
        self.session = session or session_type(env)
        self.tools = tools_on_path() if tools is None else tools
        self.restore_after_s = restore_after_s

    def target(self) -> Target:
        """The focused window now (call at key-down)."""
        if self.session != "x11" or "xdotool" not in self.tools:
            return Target(None, None)
        wid = focus_probe.focused_window(self.env)
        return Target(wid, focus_probe.window_class(wid, self.env) if wid else None)

    def plan(self, text: str, wm_class: str | None) -> Delivery:
        return choose(self.session, self.tools, text, wm_class)

    def describe(self) -> str:
        """What dictation will do here, for the hotkey self-check."""
        short = self.plan("hello", None)
        if self.session == "x11" and short.method == "type":
            long = self.plan("x" * 10_000, "xterm")
            return ("dictation: short text is typed with xdotool; long or non-ASCII text is "
                    f"pasted with Ctrl+V (Ctrl+Shift+V in terminals) and your clipboard is "
                    f"restored afterwards ({long.method})")
        return f"dictation: {short.reason}"

    def deliver(self, text: str, target: Target) -> DeliveryReport:
        n = len(text)
        if self.session == "x11" and "xdotool" in self.tools and target.window is None:
            return self._leave_on_clipboard(text, target, "no window had keyboard focus when the "
                                            "key went down, so nothing was typed")
        plan = self.plan(text, target.wm_class)
        try:
            if plan.method == "type":
                x11_keys.type_into(target.window, text, self.env)
            elif plan.method == "clipboard":
                self._paste(text, target, plan.paste_keys)
            elif plan.method in ("wtype", "ydotool"):
                args = ["wtype", "--", text] if plan.method == "wtype" else ["ydotool", "type", "--", text]
                self._run(args, plan.method)
            else:
                return self._leave_on_clipboard(text, target, plan.reason)
        except KeyInjectionError as exc:
            where = f"window {target.window} ({target.wm_class or 'no class'})" if target.window else "the focused window"
            return self._leave_on_clipboard(text, target, f"could not type into {where}: {exc}")
        return DeliveryReport(plan.method, True, n, target.wm_class, _words_message(text, target))

    def _paste(self, text: str, target: Target, keys: str) -> None:
        if self.clipboard is None:
            raise KeyInjectionError("no clipboard to paste through")
        assert target.window is not None
        self.clipboard.save()
        self.clipboard.put_text(text)
        try:
            x11_keys.press_into(target.window, keys, self.env)
            time.sleep(self.restore_after_s)
        except KeyInjectionError:
            raise  # the text stays on the clipboard: _leave_on_clipboard says so
        if not self.clipboard.restore():
            log.warning("the clipboard was too big to keep: it now holds the dictated text")

    def _run(self, args: list[str], what: str) -> None:
        timeout = TOOL_TIMEOUT_S + PER_CHAR_S * len(args[-1])
        try:
            out = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KeyInjectionError(f"{what} failed: {exc}") from exc
        if out.returncode != 0:
            raise KeyInjectionError(f"{what} failed: {out.stderr.strip()[:300]}")

    def _leave_on_clipboard(self, text: str, target: Target, why: str) -> DeliveryReport:
        if self.clipboard is not None:
            try:
                self.clipboard.put_text(text)
                said = "clipboard" in why   # the plan's own reason says so already
                return DeliveryReport("clipboard-only", False, len(text), target.wm_class,
                                      why if said else f"{why}; the text is on the clipboard")
            except Exception as exc:  # a clipboard that cannot be reached must not lose the text
                log.warning("could not put the dictation on the clipboard: %s", exc)
        return DeliveryReport("none", False, len(text), target.wm_class, why)


def _words_message(text: str, target: Target) -> str:
    n = len(text.split())
    where = f" into {target.wm_class.split()[-1]}" if target.wm_class else ""
    return f"typed {n} word{'s' if n != 1 else ''}{where}"
