"""The tray app (``deskmind`` with no command, or ``deskmind gui``) and ``deskmind trigger``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from deskmind.core.errors import DeskmindError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="start the tray app (the same as running deskmind alone)")
    p.add_argument("--no-hotkeys", action="store_true", help="do not arm global hotkeys")
    p.set_defaults(func=run_app)
    p = sub.add_parser("trigger", help="ask the running app to open the palette, talk, dictate or "
                                       "a meeting (bind this in your desktop's keyboard settings)")
    p.add_argument("action", choices=("palette", "talk", "meeting", "dictate"))
    p.set_defaults(func=cmd_trigger)


def _instance_name() -> str:
    from deskmind.core.config.paths import Paths
    from deskmind.ui.single_instance import server_name

    return server_name(Paths.from_env().data_dir)


def cmd_trigger(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QCoreApplication

    from deskmind.ui.single_instance import send_message

    _app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    reply = send_message(_instance_name(), {"cmd": "trigger", "action": args.action})
    if reply is None:
        raise DeskmindError("Deskmind is not running; start it with 'deskmind' (then this shortcut works)")
    if not reply.get("ok"):
        raise DeskmindError(reply.get("error", "the running Deskmind refused the request"))
    return 0


def run_app(args: argparse.Namespace) -> int:
    """Start the tray app, or hand over to the one already running."""
    try:
        import qasync
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:
        raise DeskmindError(f"the desktop app needs PySide6 and qasync ({exc.name} is missing): "
                            "pip install 'deskmind[desktop]' or use the command line") from exc
    from deskmind.core.app import Core
    from deskmind.ui.app import DesktopApp
    from deskmind.ui.single_instance import send_message
    from deskmind.ui.tasks import background_executor

    from PySide6.QtCore import QCoreApplication, QEvent, QTimer

    from deskmind.ui.shutdown import LAST_RESORT_GRACE_S, arm_last_resort

    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    qapp.setApplicationName("Deskmind")
    qapp.setQuitOnLastWindowClosed(False)  # closing a window must not stop the tray app
    name = _instance_name()
    if send_message(name, {"cmd": "activate"}, timeout_ms=300) is not None:
        print("deskmind: already running; opened its palette", file=sys.stderr)
        return 0
    loop = qasync.QEventLoop(qapp)
    # Plain threads for asyncio.to_thread (retrieval, saving): no QThread left at exit.
    loop.set_default_executor(background_executor(4, "deskmind-async"))
    asyncio.set_event_loop(loop)
    core = Core()
    desktop = DesktopApp(core, instance_name=name)
    if not desktop.start(hotkeys=not getattr(args, "no_hotkeys", False)):
        print("deskmind: already running", file=sys.stderr)
        return 0
    # Ctrl-C in a terminal quits cleanly: Python only sees signals when the loop wakes up.
    signal.signal(signal.SIGINT, lambda *_a: desktop.quit())
    signal.signal(signal.SIGTERM, lambda *_a: desktop.quit())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    # From the moment quitting starts, a bound on the whole exit (see ui/shutdown.py).
    desktop.quit_started.connect(lambda: arm_last_resort(desktop.quit_bound_s + LAST_RESORT_GRACE_S))
    closed = asyncio.Event()
    desktop.quit_finished.connect(closed.set)
    # Qt ending its loop for another reason (the session ends) quits in order too.
    qapp.aboutToQuit.connect(desktop.quit)
    with loop:
        try:
            loop.run_until_complete(closed.wait())
        except RuntimeError:  # Qt's loop stopped first: run it again until every service is closed
            desktop.quit()
            loop.run_until_complete(closed.wait())
    wake.stop()
    core.close()
    # Qt objects and native engines go now, in this order, not in the interpreter's last
    # garbage collection (after the QApplication).
    desktop.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    del desktop
    gc.collect()
    return 0
