"""End to end under Xvfb, as a person does it: the filesystem server for one folder and the
time server, granted to quick-ask; the hotkey, the question typed, the tool calls listed in
the palette, a write approved with a real click on the inline button, and every call in
``deskmind audit``. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.core.agents.test_injection import tool_results
from tests.ui.xharness import ROOT, AppProcess, XSession, missing_tools

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")]

ARTIFACTS = ROOT / "test-artifacts"


def test_filesystem_and_time_tools_in_the_palette(tmp_path, qapp):
    from deskmind.core.tools.config import ToolsConfig, save_tools
    from tests.core.tools.conftest import fs_spec, time_spec
    from tests.fakes.llm_server import Faults, FakeLLMServer, Reply

    home, notes = tmp_path / "home", tmp_path / "notes"
    notes.mkdir()
    (notes / "standup.md").write_text("Moved the demo to Friday.\n")

    def model(body):
        r = tool_results(body)
        if not r:
            return Reply("", tool_calls=[("time__get_current_time", {"timezone": "UTC"}),
                                         ("notes__list_directory_with_sizes", {"path": str(notes)})])
        if len(r) == 2:
            return Reply("", tool_calls=[("notes__write_file", {"path": str(notes / "summary.md"),
                                                                "content": "Demo moved to Friday."})])
        return Reply("Today your notes folder holds **standup.md** (the demo moved to Friday); "
                     "I saved a summary as summary.md.")

    cfg = ToolsConfig(servers={"notes": fs_spec(notes), "time": time_spec()})
    cfg.set_grant("quick-ask", "notes", "*", "allow")
    cfg.set_grant("quick-ask", "time", "get_current_time", "allow")
    save_tools(cfg, home / "config")
    srv = FakeLLMServer(script=model, faults=Faults(token_delay=0.02)).start()
    (home / "config" / "routing.toml").write_text(f"""
[defaults]
discover = false
[providers.local]
kind = "ollama"
url = "{srv.url}"
[classes]
general = ["local:fake-model:1b"]
[[rules]]
name = "local-first"
class = "general"
zones = ["machine"]
[agents.quick-ask]
memory_ceiling = "private"
write_memory = true
read_paths = {json.dumps([str(notes)])}
write_paths = {json.dumps([str(notes)])}
""")
    x = XSession(tray=False).start()
    app = AppProcess(x, home).start()
    try:
        app.wait_for(lambda s: s["palette"]["built"] and s["hotkeys"], timeout=60, what="palette and hotkeys")
        x.xdotool("key", "--delay", "0", "ctrl+alt+space")
        app.wait_for(lambda s: s["palette"]["visible"] and s["palette"]["input_focus"], timeout=10, what="palette")
        x.xdotool("type", "--delay", "8", "what changed in my notes folder today?")
        x.xdotool("key", "Return")
        st = app.wait_for(lambda s: s["palette"].get("approval"), timeout=60, what="the inline approval")
        assert "notes/write_file (destructive)" in st["palette"]["approval"]
        assert st["palette"]["tools"] == [["time__get_current_time", "allowed"],
                                          ["notes__list_directory_with_sizes", "allowed"]]
        x.screenshot(ARTIFACTS / "tools-approval.png")
        bx, by, bw, bh = st["palette"]["approve_once"]
        x.xdotool("mousemove", str(bx + bw // 2), str(by + bh // 2), "click", "1")
        st = app.wait_for(lambda s: not s["palette"]["streaming"] and "summary.md" in s["palette"]["answer"],
                          timeout=30, what="the answer")
        assert st["palette"]["tools"][-1] == ["notes__write_file", "approved"]
        x.screenshot(ARTIFACTS / "tools-answered.png")
    finally:
        code = app.stop()
        x.stop()
        srv.stop()
    assert code == 0, app.log.read_text()[-2000:]
    assert (notes / "summary.md").read_text() == "Demo moved to Friday."
    audit = subprocess.run([sys.executable, "-m", "deskmind", "audit"], capture_output=True, text=True,
                           env={**os.environ, "DESKMIND_HOME": str(home)}, timeout=60).stdout.splitlines()
    assert [line.split()[3:5] for line in audit] == [
        ["time/get_current_time", "allowed:"], ["notes/list_directory_with_sizes", "allowed:"],
        ["notes/write_file", "approved:"]]
