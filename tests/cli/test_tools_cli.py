"""``deskmind tools`` in a subprocess, then the whole flow a person follows: add the filesystem
server for one folder and the time server, grant them to quick-ask, ask what changed in the
notes folder today with a tool-calling model, and find every call in ``deskmind audit``."""

from __future__ import annotations

import json
import os

from tests.cli.conftest import assert_one_line_error, run_deskmind
from tests.core.agents.test_injection import tool_results
from tests.core.tools.conftest import _module, fs_server_js
from tests.fakes.llm_server import FakeLLMServer, Reply, has_tool_result


def test_add_grant_ask_and_audit(tmp_path, deskmind_home):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "standup.md").write_text("moved the demo to Friday")
    assert run_deskmind("tools", "add", "notes", "--", "node", fs_server_js(), str(notes)).returncode == 0
    r = run_deskmind("tools", "add", "time", "--", *_module("mcp_server_time"), "--local-timezone", "UTC")
    assert r.returncode == 0 and "no agent may use it until you grant it" in r.stdout
    assert_one_line_error(run_deskmind("tools", "add", "time", "--", "true"), "exists", code=2)
    assert run_deskmind("tools", "grant", "quick-ask", "notes", "--folder", str(notes)).returncode == 0
    assert run_deskmind("tools", "grant", "quick-ask", "time", "get_current_time").returncode == 0

    listed = run_deskmind("tools", "list", "--tools", "--json")
    data = json.loads(listed.stdout)
    kinds = {t["name"]: t["kind"] for t in data["servers"]["notes"]["tools"]}
    assert kinds["list_directory"] == "read-only" and kinds["move_file"] == "destructive"
    assert data["grants"]["quick-ask"] == {"notes": {"*": "allow"}, "time": {"get_current_time": "allow"}}

    test = run_deskmind("tools", "test", "time", "--call", "get_current_time", "--args", '{"timezone": "UTC"}')
    assert test.returncode == 0 and '"timezone": "UTC"' in test.stdout

    def model(body: dict) -> Reply:
        if has_tool_result(body):
            return Reply("Today: " + " | ".join(tool_results(body)))
        return Reply("", tool_calls=[("time__get_current_time", {"timezone": "UTC"}),
                                     ("notes__list_directory", {"path": str(notes)}),
                                     ("notes__move_file", {"source": str(notes / "standup.md"),
                                                           "destination": str(notes / "x.md")})])

    (deskmind_home / "config").mkdir(exist_ok=True)
    with FakeLLMServer(script=model) as srv:
        routing = (deskmind_home / "config" / "routing.toml")
        env = dict(os.environ)
        cfg = routing.read_text()
        routing.write_text(cfg + f'\n[providers.fake]\nkind = "ollama"\nurl = "{srv.url}"\n')
        ask = run_deskmind("ask", "what changed in my notes folder today?", "--json", "--no-memory",
                           "--model", "fake:fake-model:1b", env=env)
    assert ask.returncode == 0, ask.stderr
    res = json.loads(ask.stdout)
    assert [(c["tool"], c["decision"]) for c in res["tool_calls"]] == [
        ("time__get_current_time", "allowed"), ("notes__list_directory", "allowed"),
        ("notes__move_file", "denied")]
    assert "standup.md" in res["answer"] and '"timezone": "UTC"' in res["answer"]
    assert (notes / "standup.md").exists()  # the move needed an approval nobody gave
    audit = run_deskmind("audit")
    lines = audit.stdout.splitlines()
    assert len(lines) == 3
    assert "quick-ask time/get_current_time allowed" in lines[0]
    assert "quick-ask notes/list_directory allowed" in lines[1] and str(notes) in lines[1]
    assert "quick-ask notes/move_file denied" in lines[2]

    assert run_deskmind("tools", "grant", "quick-ask", "notes", "--revoke").returncode == 0
    assert run_deskmind("tools", "remove", "notes").returncode == 0
    assert "notes" not in json.loads(run_deskmind("tools", "list", "--json").stdout)["servers"]
