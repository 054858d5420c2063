"""The real app process quits cleanly while a model streams an answer to it (Xvfb, xdotool).

`deskmind gui` runs on a private X display; the palette is opened over the local socket and a
question typed with real key events; the answer streams slowly from a loopback Ollama-protocol
server. SIGTERM (what the session and Ctrl-C send; the tray's Quit takes the same path) must end
the process with status 0 within the bound, with no unawaited coroutine, no unretrieved task
error and no forced exit in its log.
"""

from __future__ import annotations

import signal
import time

import pytest

from deskmind.ui.shutdown import QUIT_BOUND_S
from tests.ui.test_ask_ui import rules
from tests.ui.test_quit import BAD_LINES
from tests.ui.xharness import AppProcess, XSession, missing_tools

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")]


def test_the_app_process_quits_cleanly_while_a_model_streams(tmp_path, qapp):
    from deskmind.core.config.paths import Paths
    from deskmind.ui.single_instance import send_message, server_name
    from tests.fakes.llm_server import FakeLLMServer, Faults, Reply

    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    with FakeLLMServer(reply=Reply("slowly " * 400), faults=Faults(token_delay=0.1)) as srv:
        (home / "config" / "routing.toml").write_text(rules(srv.url, paste=False))
        x = XSession(tray=False).start()
        app = AppProcess(x, home, args=("--no-hotkeys",)).start()
        try:
            app.wait_for(lambda s: s["palette"]["built"], timeout=60, what="the palette built")
            name = server_name(Paths.from_env(app.env).data_dir)
            assert send_message(name, {"cmd": "activate"}) == {"ok": True}
            app.wait_for(lambda s: s["palette"]["visible"] and s["palette"]["input_focus"], timeout=10,
                         what="the palette with focus")
            x.xdotool("type", "--delay", "8", "tell me everything")
            x.xdotool("key", "Return")
            app.wait_for(lambda s: s["palette"]["streaming"] and s["palette"]["answer"].count("slowly") >= 3,
                         timeout=30, what="the answer streaming")
            t0 = time.monotonic()
            app.proc.send_signal(signal.SIGTERM)
            code = app.proc.wait(QUIT_BOUND_S + 10)
            seconds = time.monotonic() - t0
        finally:
            if app.proc.poll() is None:
                app.proc.kill()
                app.proc.wait(5)
            x.stop()
        log = app.log.read_text(errors="replace")
        assert code == 0, log[-3000:]
        assert seconds < 4.0, (seconds, log[-3000:])
        assert "quit: closed the answer being streamed" in log
        assert "going on without it" not in log and "no time left" not in log, log[-3000:]
        bad = [ln for ln in log.splitlines() if any(b in ln for b in BAD_LINES)]
        assert not bad, bad
        assert "Fatal Python error" not in log and "Traceback" not in log, log[-3000:]
