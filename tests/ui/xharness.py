"""Drive the real app under Xvfb with a tray host: Xvfb, trayer, the app process, xdotool.

Shared by the end-to-end tests and bench/palette.py. The app is a separate process (Qt's
platform is chosen once per process, and the tests' own QApplication is offscreen); it is
observed through its local socket (`{"cmd": "status"}`) and driven with real X input.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("Xvfb", "trayer", "xdotool", "import")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


class XSession:
    """A private X display with a tray host (trayer) on it."""

    def __init__(self, size: str = "1280x800x24", tray: bool = True) -> None:
        self.size, self.with_tray = size, tray
        self.xvfb: subprocess.Popen | None = None
        self.trayer: subprocess.Popen | None = None
        self.display = ""

    def start(self) -> "XSession":
        r, w = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", self.size, "-nolisten", "tcp"],
                                     pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            self.display = ":" + f.readline().strip()
        if self.with_tray:
            self.trayer = subprocess.Popen(
                ["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "120",
                 "--heighttype", "pixel", "--height", "32", "--SetDockType", "true"],
                env={**os.environ, "DISPLAY": self.display}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)   # trayer must own the tray selection before the app looks for it
        return self

    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display}

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env(), check=True, capture_output=True,
                              text=True, timeout=20).stdout

    def screenshot(self, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-window", "root", str(dest)], env=self.env(), check=True, timeout=30)
        return dest

    def stop(self) -> None:
        for p in (self.trayer, self.xvfb):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()


class AppProcess:
    """`deskmind gui` as a real process on the session's display."""

    def __init__(self, session: XSession, home: Path, extra_env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.session, self.home = session, home
        self.env = {**session.env(), **(extra_env or {}), "DESKMIND_HOME": str(home),
                    "QT_QPA_PLATFORM": "xcb"}
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.log = home / "app.log"
        self.started_at = 0.0

    def start(self) -> "AppProcess":
        # These runs are not about the welcome window: mark it seen unless the test decided.
        desktop = self.home / "config" / "desktop.toml"
        desktop.parent.mkdir(parents=True, exist_ok=True)
        text = desktop.read_text() if desktop.exists() else ""
        if "first_run_seen" not in text:
            desktop.write_text("first_run_seen = true\n" + text)
        self.started_at = time.time()
        self.proc = subprocess.Popen([sys.executable, "-m", "deskmind", "-v", "gui", *self.args], env=self.env,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, cwd=str(ROOT))
        return self

    def status(self, timeout_ms: int = 2000) -> dict[str, Any] | None:
        """The app's status over its local socket (needs a Q(Core)Application in this process)."""
        from PySide6.QtCore import QCoreApplication

        from deskmind.core.config.paths import Paths
        from deskmind.ui.single_instance import send_message, server_name

        if QCoreApplication.instance() is None:
            self._qapp = QCoreApplication([])
        return send_message(server_name(Paths.from_env(self.env).data_dir), {"cmd": "status"}, timeout_ms)

    def wait_for(self, cond: Callable[[dict[str, Any]], bool], timeout: float = 20.0, what: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the app exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            last = self.status()
            if last and cond(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last status: {json.dumps(last)[:1500]}\n"
                             f"log: {self.log.read_text()[-1500:]}")

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def center(rect: list[int]) -> tuple[str, str]:
    """The middle of a [x, y, w, h] rectangle, as xdotool arguments."""
    x, y, w, h = rect
    return str(x + w // 2), str(y + h // 2)


def tray_action(x: XSession, app: AppProcess, prefix: str) -> None:
    """Right-click the tray icon and click the menu item whose text starts with ``prefix``."""
    st = app.status()
    x.xdotool("mousemove", *center(st["tray"]["geometry"]), "click", "3")
    st = app.wait_for(lambda s: s["menu"]["visible"], timeout=10, what="tray menu")
    rect = next(r for t, r in st["menu"]["actions"].items() if t.startswith(prefix))
    x.xdotool("mousemove", *center(rect), "click", "1")


def settings_page(x: XSession, app: AppProcess, page: str) -> dict[str, Any]:
    """Open Settings from the tray and click ``page`` in its list; the status once it shows."""
    tray_action(x, app, "Settings")
    st = app.wait_for(lambda s: s["windows"].get("settings", {}).get("visible"), timeout=15, what="settings")
    x.xdotool("mousemove", *map(str, st["settings_nav"][page]), "click", "1")
    return app.wait_for(lambda s: s.get("settings_page") == page, timeout=10, what=f"the {page} page")
