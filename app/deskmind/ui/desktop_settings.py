"""Settings that belong to the desktop app alone (hotkeys, HUD), in ``desktop.toml``.

The core's settings schema has no writer yet and knows nothing of hotkeys, so the app keeps its
own small, versioned file beside ``settings.toml`` in the config dir. No secrets live here.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from deskmind.core.config.files import atomic_write_text
from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

# Chosen to avoid what desktops and common apps already use (Ctrl+Alt+T terminal, Ctrl+Alt+L
# lock, Ctrl+Alt+D show desktop, Ctrl+Alt+Del, Ctrl+Alt+arrows workspaces, Super+... launchers).
DEFAULT_HOTKEYS: dict[str, str] = {
    "palette": "<ctrl>+<alt>+<space>",
    "talk": "<ctrl>+<alt>+j",
    "meeting": "<ctrl>+<alt>+<shift>+m",
    # A key that types nothing: the hotkey listener does not take the key from the focused
    # app, which would otherwise get a letter before the dictation (Ctrl+Alt+D would read
    # better but shows the desktop on several desktops; Ctrl+Alt+F-keys switch consoles).
    "dictate": "<ctrl>+<shift>+<f11>",
}

ACTIONS = ("palette", "talk", "meeting", "dictate")


@dataclass
class HotkeySettings:
    bindings: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_HOTKEYS))
    # "auto": hold-to-talk when key-up events are seen, else toggle; "hold" or "toggle" to force.
    talk_mode: str = "auto"


@dataclass
class DesktopSettings:
    schema_version: int = SCHEMA_VERSION
    hotkeys: HotkeySettings = field(default_factory=HotkeySettings)
    show_hud: bool = True
    palette_history: int = 50
    first_run_seen: bool = False  # the welcome window was shown once

    def binding(self, action: str) -> str:
        """The key combination for ``action``; empty when the person disabled it."""
        return self.hotkeys.bindings.get(action, DEFAULT_HOTKEYS.get(action, ""))


def desktop_settings_path(config_dir: Path) -> Path:
    return config_dir / "desktop.toml"


def load_desktop_settings(path: Path) -> DesktopSettings:
    if not path.exists():
        return DesktopSettings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{path}: {exc}") from exc
    version = int(data.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise UserInputError(f"{path} was written by a newer Deskmind (schema {version}); upgrade to use it")
    s = DesktopSettings()
    hk: dict[str, Any] = data.get("hotkeys", {})
    if not isinstance(hk, dict):
        raise UserInputError(f"{path} [hotkeys]: expected a table")
    bindings = dict(DEFAULT_HOTKEYS)
    for action, combo in (hk.get("bindings") or {}).items():
        if action not in ACTIONS:
            log.warning("%s: unknown hotkey action '%s' ignored", path, action)
            continue
        if not isinstance(combo, str):
            raise UserInputError(f"{path} [hotkeys.bindings] {action}: expected a string like '<ctrl>+<alt>+j'")
        bindings[action] = combo
    s.hotkeys = HotkeySettings(bindings=bindings, talk_mode=str(hk.get("talk_mode", "auto")))
    if s.hotkeys.talk_mode not in ("auto", "hold", "toggle"):
        raise UserInputError(f"{path} [hotkeys] talk_mode: use auto, hold or toggle")
    s.show_hud = bool(data.get("show_hud", True))
    s.palette_history = int(data.get("palette_history", 50))
    s.first_run_seen = bool(data.get("first_run_seen", False))
    return s


def save_desktop_settings(settings: DesktopSettings, path: Path) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    atomic_write_text(path, tomlkit.dumps(asdict(settings)))
