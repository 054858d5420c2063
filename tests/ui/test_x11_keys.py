import subprocess
import sys
import time

import pytest

from deskmind.core.speech.x11_keys import KeyInjectionError, press_into, type_into
from tests.ui.xharness import XSession

# A line edit in another process that prints its text whenever it changes.
WINDOW = """
import sys
from PySide6.QtWidgets import QApplication, QLineEdit
app = QApplication(sys.argv)
w = QLineEdit(); w.setWindowTitle(sys.argv[1]); w.show()
w.textChanged.connect(lambda t: print("text:" + t, flush=True))
print("up", flush=True)
app.exec()
"""


@pytest.fixture
def xdisplay():
    session = XSession(tray=False).start()
    yield {**session.env(), "QT_QPA_PLATFORM": "xcb"}
    session.stop()


def open_window(env, title):
    app = subprocess.Popen([sys.executable, "-c", WINDOW, title], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert app.stdout.readline().strip() == "up"
    for _ in range(50):
        out = subprocess.run(["xdotool", "search", "--name", title], env=env,
                             capture_output=True, text=True).stdout.split()
        if out:
            return app, int(out[0])
        time.sleep(0.1)
    raise AssertionError(f"window {title} never appeared")


def last_text(app, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        line = app.stdout.readline()
        if line.startswith("text:"):
            seen = line[5:].rstrip("\n")
            if seen == want:
                return seen
    return seen


def test_text_is_typed_into_the_key_down_window_even_after_focus_moved(xdisplay):
    a, wa = open_window(xdisplay, "dm-keys-a")
    b, wb = open_window(xdisplay, "dm-keys-b")
    try:
        subprocess.run(["xdotool", "windowfocus", "--sync", str(wb)], env=xdisplay, timeout=5)
        type_into(wa, "hello world", xdisplay)
        assert last_text(a, "hello world") == "hello world"
    finally:
        for p in (a, b):
            p.terminate()
            p.wait(5)


def test_a_key_press_reaches_the_key_down_window(xdisplay):
    a, wa = open_window(xdisplay, "dm-keys-c")
    try:
        type_into(wa, "abc", xdisplay)
        assert last_text(a, "abc") == "abc"
        press_into(wa, "BackSpace", xdisplay)
        assert last_text(a, "ab") == "ab"
    finally:
        a.terminate()
        a.wait(5)


def test_a_window_that_is_gone_is_named_in_the_error(xdisplay):
    with pytest.raises(KeyInjectionError, match="could not focus window 123456"):
        type_into(123456, "lost", xdisplay)
