"""The tray app's side of the gateway: serving MCP and the OpenAI-compatible API in-process.

Off by default (``[gateway] tray_serves``). When on, :class:`~deskmind.core.gateway.tray_host.
GatewayHost` starts the HTTP server on a thread of its own; starting, stopping and saving the
switch run in a worker, and the outcome comes back on the GUI thread as :attr:`changed`.
Nothing of the gateway is imported while it is off.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)


class TrayGateway(QObject):
    changed = Signal()  # running, url or status changed (GUI thread)

    def __init__(self, core: Any, workers: Workers, parent: QObject | None = None,
                 **host_kw: Any) -> None:
        super().__init__(parent)
        self.core, self.workers, self.host_kw = core, workers, host_kw
        self._host: Any = None
        self._executor: Any = None  # one thread, made on first use: switches apply in order
        self.running = False
        self.url: str | None = None
        self.status = "Off"

    @property
    def host(self) -> Any:
        """The core host (built on first use; any thread)."""
        if self._host is None:
            from deskmind.core.gateway.tray_host import GatewayHost

            self._host = GatewayHost(self.core, **self.host_kw)
        return self._host

    def address(self) -> str:
        from deskmind.core.gateway.tray_host import served_address

        return served_address(self.core.settings)

    def enabled(self) -> bool:
        from deskmind.core.gateway.tray_host import tray_serves

        return tray_serves(self.core.settings)

    def start_if_enabled(self) -> None:
        """At start-up, after the tray is up: serve when the person switched it on."""
        if self.enabled():
            self.set_enabled(True, save=False)

    def set_enabled(self, on: bool, save: bool = True) -> None:
        """Switch serving on or off (GUI thread); the work happens in a worker."""
        def work() -> str | None:
            if save:
                self.core.settings_store.update("gateway", {"tray_serves": on})
            if on:
                return self.host.start()
            if self._host is not None:
                self._host.stop()
            return None

        self.status = "Starting…" if on else "Stopping…"
        self.changed.emit()
        if self._executor is None:
            from deskmind.ui.tasks import background_executor

            self._executor = background_executor(1, "deskmind-gateway")
        self.workers.submit(work, done=self._done, failed=self._failed, executor=self._executor)

    def _done(self, url: str | None) -> None:
        self.running, self.url = url is not None, url
        self.status = (f"Serving MCP at {url}/mcp and the OpenAI-compatible API at {url}/v1"
                       if url else "Off")
        self.changed.emit()

    def _failed(self, exc: BaseException) -> None:
        log.warning("the tray app could not serve the gateway: %s", exc)
        self.running, self.url = False, None
        self.status = f"Not serving: {exc}"
        self.changed.emit()

    def clients_changed(self) -> None:
        """A grant or token changed (any thread): the running server applies it at once."""
        if self._host is not None:
            self._host.clients_changed()

    def shutdown(self) -> None:
        """Quit: stop serving and wait for the server to close its streams and write its audit
        trail. Blocking: the quit sequence runs it on a thread of its own, within its bound."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._host is not None:
            self._host.stop(wait=True)
