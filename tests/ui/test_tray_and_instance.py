from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from PySide6.QtWidgets import QPushButton

from deskmind.ui.single_instance import InstanceServer, send_message, server_name
from deskmind.ui.tray import STATES, TrayController


def test_tray_states_and_menu(qtbot):
    tray = TrayController(tray_available=True)
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator() and a.isVisible()]
    assert texts == ["Ask…", "Start meeting", "Index files…", "Memory…", "Settings…",
                     "Pause indexing", "Quit"]
    keys = set()
    for s in STATES:
        tray.set_state(s, "detail")
        keys.add(tray.tray.icon().cacheKey())
        assert s == tray.state and "detail" in tray.tray.toolTip()
    assert len(keys) == len(STATES)          # a distinct icon per state
    with qtbot.waitSignal(tray.settings_requested, timeout=1000):
        tray.act_settings.trigger()
    with qtbot.waitSignal(tray.pause_toggled, timeout=1000) as sig:
        tray.act_pause.trigger()
    assert sig.args == [True]
    tray.set_meeting(75)
    assert tray.act_meeting.text() == "Stop meeting (1:15)" and tray.act_transcript.isVisible()
    tray.set_meeting(None)
    assert tray.act_meeting.text() == "Start meeting"


def test_fallback_window_when_no_tray(qtbot):
    tray = TrayController(tray_available=False)
    assert tray.tray is None
    win = tray.fallback
    qtbot.addWidget(win)
    tray.show()
    assert win.isVisible() and "no system tray" in win.message.text()
    with qtbot.waitSignal(tray.memory_requested, timeout=1000):
        win.findChild(QPushButton, "fallback_memory").click()
    tray.notify("Deskmind", "indexing failed", attention=True)
    assert tray.state == "attention" and "indexing failed" in win.status.text()


def test_second_start_and_trigger_reach_the_running_instance(qtbot, deskmind_home):
    from deskmind.core.config.paths import Paths

    name = server_name(Paths.from_env().data_dir)
    got = []
    server = InstanceServer(name, handler=lambda m: got.append(m) or {"ok": True})
    assert server.listen()
    second = InstanceServer(name)
    assert not second.listen()           # a live instance owns the name
    env = dict(os.environ, DESKMIND_HOME=str(deskmind_home))
    proc = subprocess.Popen([sys.executable, "-m", "deskmind", "trigger", "talk"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=20000)
    assert proc.returncode == 0, proc.stderr.read()
    assert got == [{"cmd": "trigger", "action": "talk"}]
    server.close()


def test_stale_socket_is_taken_over(qtbot):
    import socket

    name = f"deskmind-test-{uuid.uuid4().hex[:8]}"
    probe = InstanceServer(name)
    assert probe.listen()
    path = probe._server.fullServerName()
    probe.close()                                   # a clean close removes the socket file
    assert not os.path.exists(path)
    # A crash leaves the socket file behind with nobody listening on it.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()
    assert os.path.exists(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, pytest.raises(ConnectionRefusedError):
        s.connect(path)
    again = InstanceServer(name)
    try:
        assert again.listen()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)                         # the name is served again
    finally:
        again.close()


def test_trigger_without_running_app_says_what_to_do(deskmind_home):
    env = dict(os.environ, DESKMIND_HOME=str(deskmind_home))
    out = subprocess.run([sys.executable, "-m", "deskmind", "trigger", "palette"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "not running" in out.stderr and "Traceback" not in out.stderr
