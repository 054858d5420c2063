"""A real text widget in another process on an X display: where dictated text should land.

The window (a Qt line edit) prints ``text:<its text>`` whenever its text changes; commands on
its stdin set or read the clipboard, so a test can check that the person's clipboard
survives a dictation: ``set <text>`` (the window owns the clipboard), ``get`` (prints
``clip:<text>``), ``focus`` (takes keyboard focus).
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

WINDOW = r"""
import sys
from PySide6.QtCore import QSocketNotifier
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QLineEdit
app = QApplication(["dm-text-window"] + sys.argv[1:])
w = QLineEdit(); w.setWindowTitle(sys.argv[1]); w.resize(900, 40); w.show()
w.textChanged.connect(lambda t: print("text:" + t, flush=True))
def command():
    line = sys.stdin.readline()
    if not line:
        app.quit(); return
    cmd, _, arg = line.rstrip("\n").partition(" ")
    if cmd == "set":
        QGuiApplication.clipboard().setText(arg)
        print("set", flush=True)
    elif cmd == "get":
        print("clip:" + QGuiApplication.clipboard().text(), flush=True)
n = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
n.activated.connect(command)
print("up", flush=True)
app.exec()
"""


class TextWindow:
    def __init__(self, env: dict[str, str], title: str) -> None:
        self.env, self.title = env, title
        self.proc = subprocess.Popen([sys.executable, "-c", WINDOW, title],
                                     env={**env, "QT_QPA_PLATFORM": "xcb"}, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "up"
        self.lines: queue.Queue[str] = queue.Queue()
        self.text_at = 0.0
        threading.Thread(target=self._pump, daemon=True).start()
        self.wid = self._find()
        self.text = ""

    def _pump(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("text:"):
                self.text_at = time.monotonic()   # when the widget's text last changed
            self.lines.put(line)

    def _find(self) -> int:
        for _ in range(100):
            out = subprocess.run(["xdotool", "search", "--name", self.title], env=self.env,
                                 capture_output=True, text=True).stdout.split()
            if out:
                return int(out[0])
            time.sleep(0.05)
        raise AssertionError(f"window {self.title} never appeared")

    def focus(self) -> None:
        subprocess.run(["xdotool", "windowactivate", "--sync", str(self.wid)], env=self.env, timeout=5)
        subprocess.run(["xdotool", "windowfocus", "--sync", str(self.wid)], env=self.env, timeout=5)

    def _send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _read_until(self, prefix: str, timeout: float) -> str | None:
        """Lines until one starts with ``prefix``; text lines update ``self.text`` meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.startswith("text:"):
                self.text = line[5:].rstrip("\n")
            if line.startswith(prefix):
                return line[len(prefix):].rstrip("\n")
        return None

    def set_clipboard(self, text: str) -> None:
        self._send(f"set {text}")
        assert self._read_until("set", 5) is not None

    def clipboard(self) -> str | None:
        self._send("get")
        return self._read_until("clip:", 5)

    def wait_text(self, cond, timeout: float = 10.0) -> str:
        """The widget's text once ``cond(text)`` holds (or the last text seen at the timeout)."""
        deadline = time.monotonic() + timeout
        while not cond(self.text) and time.monotonic() < deadline:
            self._read_until("text:", min(0.5, max(0.01, deadline - time.monotonic())))
        return self.text

    def settled(self, quiet_s: float = 0.4, timeout: float = 10.0) -> str:
        """The widget's text once it has not changed for ``quiet_s``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.text
            self._read_until("text:", quiet_s)
            if self.text == before:
                break
        return self.text

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
