"""The composition root of the desktop app: builds the services once and wires the widgets.

Start-up is ordered for a fast tray: the local socket and the tray come first; the palette,
the hotkeys and anything that loads models come after the event loop is running. Windows other
than the palette are built on first use.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from deskmind.core.app import Core
from deskmind.ui.answers import Answerer, Citation
from deskmind.ui.ask_controller import AskController
from deskmind.ui.bridge import CoreBridge
from deskmind.ui.desktop_settings import DesktopSettings, DesktopSettingsFile
from deskmind.ui.gateway_wiring import TrayGateway
from deskmind.ui.hotkeys.manager import HotkeyManager
from deskmind.ui.indexing import IndexingService
from deskmind.ui.paste import PreviousWindow
from deskmind.ui.shutdown import QUIT_BOUND_S, QUIT_STEP_BOUND_S, QuitReport, quit_steps, run_steps
from deskmind.ui.single_instance import InstanceServer, server_name
from deskmind.ui.speech_wiring import SpeechSettingsFollower, resting_state
from deskmind.ui.tasks import Workers
from deskmind.ui.tray import TrayController

log = logging.getLogger(__name__)


class DesktopApp(QObject):
    ready = Signal()
    speech_ready = Signal()
    quit_started = Signal()
    quit_finished = Signal()   # every service is closed: the loop may end

    def __init__(self, core: Core, *, answerer: Answerer | None = None,
                 hotkey_backend: Any = "auto", tray_available: bool | None = None,
                 instance_name: str | None = None, speech: Any = None,
                 permissions: Callable[[str], bool] | None = None,
                 hub_kw: dict[str, Any] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.t0 = time.perf_counter()
        self.core = core
        self.bridge = CoreBridge(self)
        self.workers = Workers(self.bridge)
        self.prefs = DesktopSettingsFile(core.paths.config_dir)
        self.desktop: DesktopSettings = self.prefs.settings
        self.instance = InstanceServer(instance_name or server_name(core.paths.data_dir),
                                       handler=self.handle_message, parent=self)
        self.tray = TrayController(tray_available, parent=self)
        self.indexing = IndexingService(core.paths, self.bridge, parent=self)
        self.gateway = TrayGateway(core, self.workers, parent=self, hub_kw=hub_kw)
        self.hotkeys = HotkeyManager(self.bridge, self.workers, self.desktop.hotkeys.bindings,
                                     self.desktop.hotkeys.talk_mode, backend_factory=hotkey_backend,
                                     parent=self)
        self.ask = AskController(core, self.workers, answerer=answerer, hub_kw=hub_kw)
        self.permissions = permissions or self.ask.may
        self.previous_window = PreviousWindow()
        self.speech = speech
        self.speech_follower = SpeechSettingsFollower(self, core.settings_store)
        self.palette: Any = None
        self.hud: Any = None
        self.talk: Any = None
        self.meeting: Any = None
        self.dictation: Any = None   # the dictate key (ui/dictation.py)
        self._windows: dict[str, Any] = {}
        self.tray_ready_ms: float | None = None
        self.tray_ready_at: float | None = None
        self.warmed: Any = None
        self.first_run: Any = None  # the welcome window, on the first start only
        self.quit_bound_s = QUIT_BOUND_S
        self.quitting: asyncio.Task | None = None
        self.quit_report: QuitReport | None = None
        self.memory_watcher: Any = None   # notices what other processes and machines wrote
        self.memory_error: str | None = None  # why the memory cannot be read now
        self._wire()

    # -- start / stop --------------------------------------------------------------------------

    def start(self, hotkeys: bool = True) -> bool:
        """False when another instance already runs (this one then sends it 'activate')."""
        if not self.instance.listen():
            return False
        # Hand the GIL round more often (default 5 ms): worker threads doing Python work then
        # delay the GUI thread's timers and input less.
        sys.setswitchinterval(0.002)
        self.tray.show()
        self.tray_ready_ms = (time.perf_counter() - self.t0) * 1000
        self.tray_ready_at = time.time()
        log.info("tray ready in %.0f ms", self.tray_ready_ms)
        # After the loop is running: the palette (so the hotkey only shows it), the hotkeys,
        # the speech controllers and the interrupted-meeting check.
        QTimer.singleShot(0, lambda: self._finish_start(hotkeys))
        return True

    def _finish_start(self, hotkeys: bool) -> None:
        self.build_palette()
        from deskmind.ui import first_run

        if first_run.needed(self.desktop):
            self.first_run = first_run.show_first_run(self, self._first_run_seen)
        self.warmed = self.workers.warm_up()
        # The embedded model loads now, off this thread, so the first question finds it loaded.
        from deskmind.core.runtimes.llamacpp import preload_embedded

        self.workers.pool.submit(preload_embedded, self.core.engines, self.core.paths.config_dir)
        if hotkeys:
            self.hotkeys.start()
        self._build_speech()
        from deskmind.ui.memory_watch import start_memory_watch

        self.memory_watcher = start_memory_watch(self)
        self.gateway.start_if_enabled()   # MCP and the API, when switched on (a worker)
        self.ready.emit()

    def quit(self) -> None:
        """Close every service in order, within :attr:`quit_bound_s` (see ui/shutdown.py), on
        this loop; :attr:`quit_finished` follows. Safe to call again (Ctrl-C twice, the tray
        and the session both asking)."""
        if self.quitting is not None:
            return
        log.info("quitting")
        self.quit_started.emit()
        self.quitting = asyncio.ensure_future(self._quit())

    async def _quit(self) -> None:
        try:
            self.quit_report = await run_steps(quit_steps(self), self.quit_bound_s,
                                               min(QUIT_STEP_BOUND_S, self.quit_bound_s))
        finally:
            self.quit_finished.emit()

    def release_widgets(self) -> None:
        """Last quit step: the socket, the tray and every window go, before the loop ends (not
        in the interpreter's final garbage collection, after the QApplication)."""
        self.instance.close()
        self.tray.hide()
        meeting = self.meeting
        for w in [*self._windows.values(), self.palette, self.hud, self.first_run, self.tray.fallback,
                  getattr(meeting, "transcript", None), getattr(meeting, "minutes", None)]:
            if w is not None and hasattr(w, "close"):
                w.close()
                w.deleteLater()
        self._windows.clear()
        self.workers.shutdown()

    # -- wiring --------------------------------------------------------------------------------

    def _wire(self) -> None:
        t, b = self.tray, self.bridge
        t.ask_requested.connect(self.show_palette)
        t.index_requested.connect(lambda: self.window("dropzone").show())
        t.memory_requested.connect(lambda: self.show_window("browser"))
        t.settings_requested.connect(lambda: self.show_window("settings"))
        t.pause_toggled.connect(self.indexing.set_paused)
        t.quit_requested.connect(self.quit)
        t.meeting_toggled.connect(self.toggle_meeting)
        t.transcript_requested.connect(lambda: self.meeting is not None and self.meeting.show_transcript())
        b.hotkey_pressed.connect(self.on_hotkey_pressed)
        b.hotkey_released.connect(self.on_hotkey_released)
        b.trigger_requested.connect(self.on_trigger)
        b.error_raised.connect(lambda msg: self.tray.notify("Deskmind", msg, attention=True))
        self.indexing.busy_changed.connect(self._indexing_busy)
        self.indexing.failed.connect(lambda msg: self.tray.notify("Indexing failed", msg, attention=True))

    def apply_speech(self, values: dict[str, Any]) -> str:
        """Save [speech] (GUI thread); the follower applies it and says how."""
        return self.speech_follower.save(values)

    def _indexing_busy(self, busy: bool) -> None:
        if busy:
            self.tray.set_state("indexing")
        elif self.tray.state == "indexing":
            self.tray.set_state(resting_state(self))

    def handle_message(self, msg: dict) -> dict:
        """A later `deskmind` or `deskmind trigger X` (GUI thread, from the local socket)."""
        if msg.get("cmd") == "activate":
            self.show_palette()
            return {"ok": True}
        if msg.get("cmd") == "status":
            from deskmind.ui.status import snapshot

            return snapshot(self)
        self.bridge.trigger_requested.emit(msg["action"])
        return {"ok": True}

    def on_trigger(self, action: str) -> None:
        if action == "palette":
            self.show_palette()
        elif action == "talk":
            self.toggle_talk()
        elif action == "meeting":
            self.toggle_meeting()
        elif action == "dictate":
            self._talk_key("dictate", lambda c: c.toggle())

    def _talk_key(self, action: str, use: Callable[[Any], None]) -> None:
        controller = self.talk if action == "talk" else self.dictation
        if controller is None:
            self._speech_missing()
        else:
            use(controller)

    def on_hotkey_pressed(self, action: str) -> None:
        if action == "palette":
            if self.palette is not None and self.palette.isVisible() and self.palette.isActiveWindow():
                self.palette.hide()
            else:
                self.show_palette()
        elif action == "talk":
            if self.talk is not None:
                self.talk.pressed(hold=self.hotkeys.talk_is_hold())
            else:
                self._speech_missing()
        elif action == "meeting":
            self.toggle_meeting()
        elif action == "dictate":
            self._talk_key(action, lambda c: c.pressed(hold=self.hotkeys.talk_is_hold(action)))

    def on_hotkey_released(self, action: str) -> None:
        if action == "talk" and self.talk is not None:
            self.talk.released(hold=self.hotkeys.talk_is_hold())
        elif action == "dictate" and self.dictation is not None:
            self.dictation.released(hold=self.hotkeys.talk_is_hold(action))

    # -- palette -------------------------------------------------------------------------------

    def build_palette(self) -> Any:
        if self.palette is None:
            from deskmind.ui.palette import Palette

            self.palette = Palette(self.ask, can_paste=self._can_paste,
                                   history_size=self.desktop.palette_history,
                                   memory_empty=self._memory_empty)
            self.palette.citation_opened.connect(self.open_citation)
            self.palette.files_dropped.connect(self._index_from_palette)
            self.palette.paste_requested.connect(self.paste_answer)
            self.ask.set_inline_approval(self.palette.approve_inline)
            self.ask.on_permissions_changed(self.palette.update_buttons)
        return self.palette

    def _memory_empty(self, reply: Callable[[bool], None]) -> None:
        self.workers.submit(lambda: self.core.store.is_empty(), done=reply,
                            failed=lambda e: log.debug("cannot tell whether memory is empty: %s", e))

    def show_palette(self) -> None:
        p = self.build_palette()
        if self.previous_window.supported and not p.isVisible():
            own = str(int(p.winId()))
            self.workers.submit(self.previous_window.remember,
                                done=lambda w: w == own and setattr(self.previous_window, "window", None))
        p.show_palette()

    def _can_paste(self) -> bool:
        return self.previous_window.supported and bool(self.permissions("paste"))

    def paste_answer(self, text: str) -> None:
        from PySide6.QtGui import QGuiApplication

        if not self._can_paste():
            return
        QGuiApplication.clipboard().setText(text)
        self.palette.hide()
        self.workers.submit(self.previous_window.paste,
                            failed=lambda e: self.tray.notify("Paste failed", str(e)))

    def _first_run_seen(self) -> None:
        self.prefs.set_first_run_seen()

    def _index_from_palette(self, paths: list[str]) -> None:
        def done(summary: dict) -> None:
            if summary.get("paths") == [str(p) for p in paths] and self.palette is not None:
                self.palette.indexing_done(summary)
                self.indexing.finished.disconnect(done)

        self.indexing.finished.connect(done)
        self.indexing.index(paths)

    def open_citation(self, c: Citation) -> None:
        if c.source_id is not None:
            self.open_source_id(c.source_id, c.locator, c.chunk_id)
            return
        # The pipeline cites by uri and chunk: find the source id off the GUI thread.
        self.workers.submit(lambda: (self.core.store.resolve(c.source) or [None])[0],
                            done=lambda sid: self.open_source_id(sid, c.locator, c.chunk_id))

    def open_source_id(self, source_id: int | None, locator: dict | None = None,
                       chunk_id: int | None = None) -> None:
        """Show a memory item (cited passage, saved note, meeting) in the browser, at its place."""
        browser = self.show_window("browser")
        if source_id is not None:
            browser.open_source(source_id, locator, chunk_id)

    # -- lazily built windows ------------------------------------------------------------------

    def window(self, name: str) -> Any:
        w = self._windows.get(name)
        if w is None:
            w = self._windows[name] = self._build_window(name)
        return w

    def built_window(self, name: str) -> Any:
        """The window ``name`` if it was built, else None (nothing is built)."""
        return self._windows.get(name)

    def show_window(self, name: str) -> Any:
        w = self.window(name)
        w.show()
        w.raise_()
        w.activateWindow()
        return w

    def _build_window(self, name: str) -> Any:
        if name == "dropzone":
            from deskmind.ui.dropzone import DropZone

            return DropZone(self.indexing)
        if name == "browser":
            from deskmind.ui.browser.window import MemoryBrowser

            b = MemoryBrowser(lambda: self.core.store, self.core.searcher, self.workers,
                              audio_dir=self.core.paths.audio_dir)
            b.refresh()
            return b
        if name == "settings":
            from deskmind.core.secrets import SecretStore
            from deskmind.ui.settings.build import SettingsServices, build_settings

            return build_settings(SettingsServices(
                core=self.core, workers=self.workers, ask=self.ask, gateway=self.gateway,
                hotkeys=self.hotkeys, apply_hotkeys=self.apply_hotkeys, speech=lambda: self.speech,
                apply_speech=self.apply_speech, speech_ready=self.speech_ready, secrets=SecretStore))
        raise KeyError(name)

    def apply_hotkeys(self, bindings: dict[str, str], talk_mode: str) -> None:
        """Settings changed the hotkeys: save and re-arm at once."""
        self.prefs.set_hotkeys(bindings, talk_mode)
        self.hotkeys.rebind(bindings, talk_mode)
        from deskmind.ui.speech_wiring import arm_talk_keys

        arm_talk_keys(self)   # both talk keys disabled: the pre-roll closes the microphone

    # -- speech ----------------------------------------------------------------------------------

    def _build_speech(self) -> None:
        """Import and build the speech service in a worker (a ~0.4 s import), then the controls."""
        from deskmind.ui.speech_wiring import build_speech_controllers, make_speech

        def made(speech: Any) -> None:
            if speech is not None:
                self.speech = speech
            self.talk, self.meeting = build_speech_controllers(self)
            self.speech_ready.emit()

        if self.speech is not None:
            made(self.speech)
        else:
            self.workers.submit(make_speech, self.core, getattr(self.core, "complete", None), done=made,
                                failed=lambda e: log.warning("speech unavailable: %s", e))

    def _speech_missing(self) -> None:
        self.tray.notify("Deskmind", "Voice notes and meetings need the speech engine "
                         "(faster-whisper), which is not available in this installation.", attention=True)

    def toggle_talk(self) -> None:
        if self.talk is None:
            self._speech_missing()
        else:
            self.talk.toggle()

    def toggle_meeting(self) -> None:
        if self.meeting is None:
            self._speech_missing()
        else:
            self.meeting.toggle()
