"""The palette over the real pipeline calling real MCP servers: each call listed with its
status, and a destructive call approved inline (the answer's loop waits; the GUI does not)."""

from __future__ import annotations

from tests.ui.conftest import close_app  # noqa: E402

import json
import uuid

import pytest

from deskmind.core.agents.audit import AuditLog
from deskmind.core.secrets import SecretStore
from deskmind.core.tools.config import ToolsConfig, save_tools
from tests.core.agents.test_injection import tool_results
from tests.core.tools.conftest import fs_spec, time_spec
from tests.fakes.llm_server import FakeLLMServer, Reply, has_tool_result
from tests.ui.test_ask_ui import FAST, rules


@pytest.fixture
def tools_app(core, qtbot, qloop):
    from deskmind.ui.app import DesktopApp

    app = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                     hub_kw={"targets": (), "embedded": None, "timeouts": FAST,
                             "secrets": SecretStore(environ={})})
    assert app.start(hotkeys=False)
    qtbot.waitUntil(lambda: app.palette is not None, timeout=5000)
    yield app
    close_app(app)


def configure(core, notes, url):
    cfg = ToolsConfig(servers={"notes": fs_spec(notes), "time": time_spec()})
    cfg.set_grant("quick-ask", "notes", "*", "allow")
    cfg.set_grant("quick-ask", "time", "get_current_time", "allow")
    save_tools(cfg, core.paths.config_dir)
    text = rules(url, paste=False) + f"read_paths = {json.dumps([str(notes)])}\nwrite_paths = {json.dumps([str(notes)])}\n"
    (core.paths.config_dir / "routing.toml").write_text(text)


def test_palette_lists_tool_calls_and_asks_inline(qtbot, tools_app, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "today.md").write_text("call the plumber")

    def model(body):
        results = tool_results(body)
        if not results:
            return Reply("", tool_calls=[("time__get_current_time", {"timezone": "UTC"}),
                                         ("notes__list_directory", {"path": str(notes)}),
                                         ("time__convert_time", {"source_timezone": "UTC", "time": "10:00",
                                                                 "target_timezone": "Asia/Tokyo"})])
        if len(results) == 3:
            return Reply("", tool_calls=[("notes__write_file", {"path": str(notes / "summary.md"),
                                                                "content": "plumber"})])
        return Reply("Changed today: today.md (call the plumber); I saved a summary.")

    core = tools_app.core
    with FakeLLMServer(script=model) as srv:
        core.paths.config_dir.mkdir(parents=True, exist_ok=True)
        configure(core, notes, srv.url)
        p = tools_app.palette
        tools_app.show_palette()
        p.input.setText("what changed in my notes folder today?")
        p.submit()
        qtbot.waitUntil(lambda: p.tools.approval.isVisible(), timeout=30000)
        assert not p.task.done()  # the loop waits for the person; the GUI keeps running
        assert "notes/write_file (destructive)" in p.tools.question.text()
        listed = p.tools.list.text()
        assert "time/get_current_time" in listed and "notes/list_directory" in listed
        assert "time/convert_time" in listed and "not granted" in listed
        p.tools.allow_btn.click()
        qtbot.waitUntil(lambda: p.task.done(), timeout=30000)
    assert (notes / "summary.md").read_text() == "plumber"
    assert [(c["tool"], c["decision"]) for c in p.tools.calls] == [
        ("time__get_current_time", "allowed"), ("notes__list_directory", "allowed"),
        ("time__convert_time", "denied"), ("notes__write_file", "approved")]
    assert "Changed today" in p.answer and not p.tools.approval.isVisible()
    assert [(e.tool, e.decision) for e in AuditLog(core.store).entries()] == [
        ("time/get_current_time", "allowed"), ("notes/list_directory", "allowed"),
        ("time/convert_time", "denied"), ("notes/write_file", "approved")]


def test_escape_while_an_approval_waits_denies_it(qtbot, tools_app, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()

    def model(body):
        if has_tool_result(body):
            return Reply("ok")
        return Reply("", tool_calls=[("notes__write_file", {"path": str(notes / "x.md"), "content": "x"})])

    core = tools_app.core
    with FakeLLMServer(script=model) as srv:
        core.paths.config_dir.mkdir(parents=True, exist_ok=True)
        configure(core, notes, srv.url)
        p = tools_app.palette
        tools_app.show_palette()
        p.input.setText("write it")
        p.submit()
        qtbot.waitUntil(lambda: p.tools.approval.isVisible(), timeout=30000)
        p.escape()
        qtbot.waitUntil(lambda: p.task.done(), timeout=10000)
    assert not (notes / "x.md").exists() and not p.tools.approval.isVisible()
