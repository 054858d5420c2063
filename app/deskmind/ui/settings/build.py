"""Assembles the settings window from its pages, each given only the services it needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from deskmind.ui.settings.hotkeys_page import HotkeysPage
from deskmind.ui.settings.storage_page import StoragePage
from deskmind.ui.settings.window import SettingsWindow
from deskmind.ui.tasks import Workers


@dataclass
class SettingsServices:
    """What the pages may use; the composition root fills it (never the app itself)."""

    core: Any                                   # paths, settings; its store only from workers
    workers: Workers
    ask: Any                                    # AskController: inventory, settings_changed...
    gateway: Any                                # TrayGateway
    hotkeys: Any                                # HotkeyManager
    apply_hotkeys: Callable[[dict[str, str], str], None]
    speech: Callable[[], Any]                   # the current speech service, or None
    apply_speech: Callable[[dict[str, Any]], str]
    speech_ready: Any                           # a signal: the speech service was built
    secrets: Callable[[], Any]                  # a SecretStore (use it on workers.secrets)


def build_settings(s: SettingsServices) -> SettingsWindow:
    w = SettingsWindow()
    core, workers = s.core, s.workers
    if s.ask.models_configurable:
        from deskmind.ui.settings.agents_page import AgentsPage
        from deskmind.ui.settings.models_page import ModelsPage
        from deskmind.ui.settings.privacy_page import PrivacyPage
        from deskmind.ui.settings.routing_file import RoutingFile
        from deskmind.ui.settings.routing_page import RoutingPage
        from deskmind.ui.settings.runtimes_page import RuntimesPage

        changed = s.ask.settings_changed
        rf = RoutingFile(core.paths.config_dir)
        w.add_page("Runtimes", RuntimesPage(rf, s.ask.inventory, workers, changed, s.secrets,
                                            embedded=s.ask.embedded_listed()))
        w.add_page("Models", ModelsPage(rf, changed))
        from deskmind.core.routing.ledger import EgressLedger
        from deskmind.ui.settings.model_files_page import ModelFilesPage

        ledger = lambda: EgressLedger(core.store)   # noqa: E731  (opens the database: workers only)
        w.add_page("Model files", ModelFilesPage(core.paths, ledger, changed))
        w.add_page("Routing", RoutingPage(rf, s.ask.inventory, changed))
        w.add_page("Agents", AgentsPage(rf, changed))
        from deskmind.ui.settings.tools_page import ToolsPage

        w.add_page("Tools", ToolsPage(core.paths.config_dir, core.paths.log_dir, workers, changed))
        w.add_page("Privacy", PrivacyPage(rf, ledger, workers, changed))
    from deskmind.core.gateway.clients import ClientRegistry
    from deskmind.ui.settings.gateway_page import GatewayPage

    w.add_page("Gateway", GatewayPage(lambda: ClientRegistry(core.store), s.gateway, workers,
                                      s.gateway.address(), limits=core.settings.gateway))
    w.add_page("Hotkeys", HotkeysPage(s.hotkeys, s.apply_hotkeys))
    from deskmind.ui.settings.indexing_page import IndexingPage

    w.add_page("Indexing", IndexingPage(core.settings_store, workers))
    w.add_page("Storage", StoragePage(core, workers))

    def add_speech() -> None:
        from deskmind.ui.settings.speech_page import SpeechPage

        if s.speech() is not None and "Speech" not in w.pages:
            w.add_page("Speech", SpeechPage(core, s.speech, workers, s.apply_speech), before="Storage")

    add_speech()
    s.speech_ready.connect(add_speech)   # the speech service is built in the background
    return w
