"""``deskmind serve``: the whole stack with no GUI.

MCP over Streamable HTTP and the OpenAI-compatible endpoint on one loopback port, folder
watching (the ingestion watcher, for the folders in ``[ingest] watch``) and scheduled backups
of the memory database. The tray app may run at the same time on the same database: each
process has its own single writer and SQLite's WAL mode plus a busy timeout serialise them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from deskmind.core.gateway.stack import Gateway, HttpServer
from deskmind.core.secrets import install_redaction

log = logging.getLogger(__name__)

BACKUP_NAME = re.compile(r"^deskmind-\d{8}-\d{6}\.db$")


class BackupScheduler:
    """Makes a consistent backup when the newest one is older than the interval, keeps the
    newest ``keep``. ``run_due()`` may be called from any non-GUI thread (it blocks)."""

    def __init__(self, store: Any, folder: Path, every_s: float, keep: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.folder = Path(folder)
        self.every_s = every_s
        self.keep = max(1, keep)
        self.clock = clock

    def backups(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if BACKUP_NAME.match(p.name))

    def due_in(self) -> float:
        """Seconds until the next backup is due (0 when due now)."""
        have = self.backups()
        if not have:
            return 0.0
        age = self.clock() - have[-1].stat().st_mtime
        return max(0.0, self.every_s - age)

    def run_due(self) -> Path | None:
        if self.due_in() > 0:
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.clock()))
        dest = self.folder / f"deskmind-{stamp}.db"
        if dest.exists():
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        made = self.store.backup(dest)
        for old in self.backups()[: -self.keep]:
            old.unlink(missing_ok=True)
        log.info("backup written: %s", made)
        return made


class Daemon:
    """Runs the gateway's HTTP surfaces, the folder watcher and the backup schedule until
    stopped (SIGINT/SIGTERM, or :meth:`request_stop` from another thread)."""

    def __init__(self, core: Any, gateway: Gateway, *, mcp_http: bool = True, api: bool = True,
                 watch: bool = True, backups: bool = True, port: int | None = None,
                 host: str | None = None, watcher_factory: Callable[..., Any] | None = None) -> None:
        self.core = core
        self.gateway = gateway
        cfg = gateway.config
        self.http = (HttpServer(gateway.http_app(mcp=mcp_http, api=api),
                                host=host or cfg.host, port=cfg.port if port is None else port)
                     if (mcp_http or api) else None)
        # uvicorn has just set up its own log handlers: they scrub keys too.
        install_redaction()
        self.watch = watch
        self.watcher_factory = watcher_factory
        self.watcher: Any = None
        folder = Path(cfg.backup_dir).expanduser() if cfg.backup_dir else core.paths.data_dir / "backups"
        self.backups = (BackupScheduler(core.store, folder, cfg.backup_every_hours * 3600,
                                        cfg.backup_keep) if backups and cfg.backup_every_hours > 0
                        else None)
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = threading.Event()

    def request_stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self.http is not None:
            self.http.server.should_exit = True

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or a platform without loop signal handlers
        tasks: list[asyncio.Task] = []
        if self.http is not None:
            tasks.append(asyncio.create_task(self.http.serve(), name="http"))
        if self.backups is not None:
            tasks.append(asyncio.create_task(self._backup_loop(), name="backups"))
        if self.watch:
            tasks.append(asyncio.create_task(self._watch(), name="watch"))
        stopper = asyncio.create_task(self._stop.wait(), name="stop")
        if self.http is not None:
            while not self.http.server.started and not tasks[0].done():
                await asyncio.sleep(0.02)
        self.started.set()
        try:
            done, _ = await asyncio.wait([stopper, *tasks[:1]] if self.http else [stopper],
                                         return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopper and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            if self.http is not None:
                self.http.server.should_exit = True
            for t in tasks[1:] + [stopper]:
                t.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
            if self.watcher is not None:
                await asyncio.to_thread(self.watcher.stop)
            self.gateway.audit.flush()

    async def _watch(self) -> None:
        try:
            await asyncio.to_thread(self._start_watcher)
        except Exception as exc:  # a bad folder must not take MCP and the API down with it
            log.error("folder watching is off: %s", exc)

    def _start_watcher(self) -> None:
        roots = list(getattr(self.core.settings.ingest, "watch", []) or [])
        if not roots:
            log.info("no folders to watch ([ingest] watch is empty)")
            return
        factory = self.watcher_factory
        if factory is None:
            from deskmind.core.ingest.watch import FolderWatcher as factory  # noqa: N813
        w = factory(self.core.indexer(), roots,
                    debounce_s=getattr(self.core.settings.ingest, "watch_debounce_s", 2.0))
        # The first scan can take long on a big folder; the HTTP surfaces are already up.
        w.start(initial_scan=True)
        self.watcher = w
        log.info("watching %s", ", ".join(str(r) for r in roots))

    async def _backup_loop(self) -> None:
        assert self.backups is not None
        while True:
            wait = await asyncio.to_thread(self.backups.due_in)
            if wait > 0:
                await asyncio.sleep(min(wait, 3600))
                continue
            try:
                await asyncio.to_thread(self.backups.run_due)
            except Exception as exc:  # a failed backup must not stop the daemon
                log.error("scheduled backup failed: %s", exc)
                await asyncio.sleep(600)
