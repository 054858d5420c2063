"""The command groups that live in modules of their own, found by name.

Both the parser (``cli/main.py``) and ``deskmind doctor`` (each group may add checks) need
them; keeping the list here lets neither import the other.
"""

from __future__ import annotations

import importlib
from types import ModuleType

GROUPS = ("ingest_cmds", "ask_cmds", "speech_cmds", "gateway_cmds", "app_cmds", "tools_cmds",
          "models_cmds", "secrets_cmds", "store_cmds")


def command_modules() -> list[ModuleType]:
    """Each installed group; each has ``register(subparsers)`` and may have ``DOCTOR_CHECKS``.
    A group whose own module is missing (a trimmed install) is left out; any other import
    error is a bug and is raised."""
    mods = []
    for name in GROUPS:
        try:
            mods.append(importlib.import_module(f"deskmind.cli.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"deskmind.cli.{name}":
                raise
    return mods
