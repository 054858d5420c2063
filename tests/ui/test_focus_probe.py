import subprocess
import sys
import time

import pytest

from deskmind.core.speech.delivery_plan import paste_keys_for
from deskmind.core.speech.focus_probe import focused_window, window_class
from tests.ui.xharness import XSession

WINDOW = """
import sys
from PySide6.QtWidgets import QApplication, QLineEdit
app = QApplication(sys.argv)
app.setApplicationName("dmprobe")
w = QLineEdit(); w.setWindowTitle("dmprobe-window"); w.show(); w.activateWindow()
print("up", flush=True)
app.exec()
"""


@pytest.fixture
def xdisplay():
    session = XSession(tray=False).start()
    yield {**session.env(), "QT_QPA_PLATFORM": "xcb"}
    session.stop()


def test_no_focused_window_gives_none(xdisplay):
    geometry = subprocess.run(["xdotool", "getdisplaygeometry"], env=xdisplay,
                              capture_output=True, text=True, timeout=5).stdout.split()
    assert geometry == ["1280", "800"]  # the display answers; only the focus is missing
    assert focused_window(xdisplay) is None


def test_the_focused_window_and_its_class_are_found(xdisplay):
    app = subprocess.Popen([sys.executable, "-c", WINDOW], env=xdisplay,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = app.stdout.readline().strip()
        assert line == "up", (app.wait(5), app.stderr.read()[-2000:])
        wid = None
        for _ in range(50):
            out = subprocess.run(["xdotool", "search", "--name", "dmprobe-window"],
                                 env=xdisplay, capture_output=True, text=True).stdout.split()
            if out:
                wid = int(out[0])
                break
            time.sleep(0.1)
        assert wid is not None
        subprocess.run(["xdotool", "windowfocus", "--sync", str(wid)], env=xdisplay, timeout=5)
        assert focused_window(xdisplay) == wid
        cls = window_class(wid, xdisplay)
        assert cls is not None and "dmprobe" in cls.lower()
        assert paste_keys_for(cls) == "ctrl+v"
    finally:
        app.terminate()
        app.wait(5)


def test_a_window_that_does_not_exist_has_no_class(xdisplay):
    assert window_class(0x7FFFFFF, xdisplay) is None
