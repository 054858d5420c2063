"""Assembles the settings window from its pages, each given only the services it needs."""

from __future__ import annotations

from typing import Any

from deskmind.ui.settings.hotkeys_page import HotkeysPage
from deskmind.ui.settings.storage_page import StoragePage
from deskmind.ui.settings.window import SettingsWindow


def build_settings(app: Any) -> SettingsWindow:
    w = SettingsWindow()
    w.add_page("Hotkeys", HotkeysPage(app.hotkeys, app.apply_hotkeys))
    w.add_page("Storage", StoragePage(app.core, app.workers))
    return w
