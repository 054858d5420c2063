"""Key combinations as text (pynput's ``<ctrl>+<alt>+j`` syntax): parse, check, display.

Pure Python, no key backend needed, so settings can validate a binding anywhere.
"""

from __future__ import annotations

MODIFIERS = ("ctrl", "alt", "shift", "cmd")
_ALIASES = {"control": "ctrl", "super": "cmd", "win": "cmd", "meta": "cmd", "option": "alt"}

# Shortcuts that desktops or nearly every app already own; binding one would steal it.
COMMON_SHORTCUTS = {
    "ctrl+alt+t": "opens a terminal on many Linux desktops",
    "ctrl+alt+l": "locks the screen on GNOME/KDE",
    "ctrl+alt+d": "shows the desktop on several desktops",
    "ctrl+alt+delete": "logs out / opens the system menu",
    "ctrl+alt+backspace": "can kill the X server",
    "ctrl+alt+left": "switches workspace", "ctrl+alt+right": "switches workspace",
    "ctrl+alt+up": "switches workspace", "ctrl+alt+down": "switches workspace",
    "alt+tab": "switches windows", "alt+f4": "closes windows", "alt+f2": "runs a command",
    "ctrl+c": "copy", "ctrl+v": "paste", "ctrl+x": "cut", "ctrl+z": "undo", "ctrl+a": "select all",
    "ctrl+s": "save", "ctrl+q": "quit", "ctrl+w": "close tab", "ctrl+t": "new tab",
    "ctrl+space": "switches input method", "cmd+space": "opens the launcher/Spotlight",
    "cmd+l": "locks the screen (Windows)", "cmd+d": "shows the desktop (Windows)",
    "ctrl+shift+esc": "opens the task manager",
}


class ComboError(ValueError):
    """A binding that cannot be used, with the reason in words."""


def normalize(combo: str) -> str:
    """Canonical text: modifiers in a fixed order, then one key; raises ComboError."""
    text = combo.strip().lower()
    if not text:
        raise ComboError("empty key combination")
    mods: set[str] = set()
    key: str | None = None
    for raw in text.split("+"):
        part = raw.strip()
        name = part[1:-1] if part.startswith("<") and part.endswith(">") else part
        name = _ALIASES.get(name, name)
        if name.endswith(("_l", "_r")) and name[:-2] in MODIFIERS:
            name = name[:-2]
        if not name:
            raise ComboError(f"'{combo}': empty key between '+' signs")
        if name in MODIFIERS:
            mods.add(name)
        elif key is None:
            key = name
        else:
            raise ComboError(f"'{combo}': only one non-modifier key is allowed ({key} and {name})")
    if key is None:
        raise ComboError(f"'{combo}': needs a key besides the modifiers")
    if not mods and not (key.startswith("f") and key[1:].isdigit()):
        raise ComboError(f"'{combo}': a global hotkey needs a modifier (Ctrl, Alt, Shift or Super)")
    return "+".join([m for m in MODIFIERS if m in mods] + [key])


def to_pynput(combo: str) -> str:
    """The normalized combination in pynput's syntax (``<ctrl>+<alt>+j``)."""
    parts = normalize(combo).split("+")
    return "+".join(f"<{p}>" if p in MODIFIERS or len(p) > 1 else p for p in parts)


def display(combo: str) -> str:
    """For people: ``Ctrl+Alt+J``; an empty binding reads "disabled"."""
    if not combo:
        return "disabled"
    try:
        parts = normalize(combo).split("+")
    except ComboError:
        return combo
    names = {"ctrl": "Ctrl", "alt": "Alt", "shift": "Shift", "cmd": "Super"}
    return "+".join(names.get(p, p.upper() if len(p) == 1 else p.capitalize()) for p in parts)


def check_bindings(bindings: dict[str, str], *, changed: str | None = None,
                   titles: dict[str, str] | None = None) -> dict[str, str | None]:
    """Per action: None when usable, else why not (bad syntax, collision, duplicate). A duplicate
    is blamed on ``changed`` (the action just set) and names the other by its title."""
    problems: dict[str, str | None] = {}
    seen: dict[str, str] = {}
    order = [a for a in bindings if a != changed] + ([changed] if changed in bindings else [])
    for action in order:
        combo = bindings[action]
        if not combo:
            problems[action] = None
            continue
        try:
            norm = normalize(combo)
        except ComboError as exc:
            problems[action] = str(exc)
            continue
        if norm in COMMON_SHORTCUTS:
            problems[action] = f"{display(combo)} {COMMON_SHORTCUTS[norm]}; choose another"
        elif norm in seen:
            problems[action] = f"{display(combo)} is already bound to {(titles or {}).get(seen[norm], seen[norm])}"
        else:
            problems[action] = None
            seen[norm] = action
    return problems
