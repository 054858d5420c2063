"""Assembles the settings window from its pages, each given only the services it needs."""

from __future__ import annotations

from typing import Any

from deskmind.ui.settings.hotkeys_page import HotkeysPage
from deskmind.ui.settings.storage_page import StoragePage
from deskmind.ui.settings.window import SettingsWindow


def _embedded_listed(app: Any) -> bool:
    """Whether the hub will have the built-in llama.cpp runtime (known without loading it)."""
    embedded = app.pipeline_answerer.hub_kw.get("embedded", "auto")
    if embedded == "auto":
        from deskmind.core.runtimes.llamacpp import embedded_installed

        return embedded_installed()
    return embedded is not None


def build_settings(app: Any) -> SettingsWindow:
    w = SettingsWindow()
    if app.pipeline_answerer is not None:
        from deskmind.ui.settings.agents_page import AgentsPage
        from deskmind.ui.settings.models_page import ModelsPage
        from deskmind.ui.settings.privacy_page import PrivacyPage
        from deskmind.ui.settings.routing_file import RoutingFile
        from deskmind.ui.settings.routing_page import RoutingPage
        from deskmind.ui.settings.runtimes_page import RuntimesPage

        rf = RoutingFile(app.core.paths.config_dir)
        w.add_page("Runtimes", RuntimesPage(rf, app.inventory, app.workers, app.settings_changed, app.secret_store,
                                            embedded=_embedded_listed(app)))
        w.add_page("Models", ModelsPage(rf, app.settings_changed))
        from deskmind.core.routing.ledger import EgressLedger
        from deskmind.ui.settings.model_files_page import ModelFilesPage

        w.add_page("Model files", ModelFilesPage(app.core.paths, lambda: EgressLedger(app.core.store),
                                                 app.settings_changed))
        w.add_page("Routing", RoutingPage(rf, app.inventory, app.settings_changed))
        w.add_page("Agents", AgentsPage(rf, app.settings_changed))
        from deskmind.ui.settings.tools_page import ToolsPage

        w.add_page("Tools", ToolsPage(app.core.paths.config_dir, app.core.paths.log_dir, app.workers,
                                      app.settings_changed))
        w.add_page("Privacy", PrivacyPage(rf, app.core, app.workers, app.settings_changed))
    from deskmind.core.gateway.clients import ClientRegistry
    from deskmind.ui.settings.gateway_page import GatewayPage

    w.add_page("Gateway", GatewayPage(ClientRegistry(app.core.store), app.gateway, app.workers,
                                      app.gateway.address()))
    w.add_page("Hotkeys", HotkeysPage(app.hotkeys, app.apply_hotkeys))
    w.add_page("Storage", StoragePage(app.core, app.workers))

    def add_speech() -> None:
        from deskmind.ui.settings.speech_page import SpeechPage

        if app.speech is not None and "Speech" not in w.pages:
            w.add_page("Speech", SpeechPage(app.core, lambda: app.speech, app.workers, app.apply_speech),
                       before="Storage")

    add_speech()
    app.speech_ready.connect(add_speech)   # the speech service is built in the background
    return w
