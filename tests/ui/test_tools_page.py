"""Settings → Tools over a real MCP server: add it, list its tools with their annotations,
override a classification, grant tools per agent; everything lands in tools.toml."""

from __future__ import annotations

from tests.ui.conftest import close_app  # noqa: E402

import sys

from deskmind.core.tools.config import load_tools
from tests.ui.test_settings_pages import app  # noqa: F401  (the fixture)


def test_add_list_classify_grant_and_remove(qtbot, app):  # noqa: F811
    w = app.show_window("settings")
    page = w.pages["Tools"]
    page.name.setText("time")
    page.target.setText(f"{sys.executable} -m mcp_server_time --local-timezone UTC")
    page.add_btn.click()
    qtbot.waitUntil(lambda: page.table.rowCount() == 3, timeout=30000)  # (every tool) + 2
    names = [page.table.item(r, 0).text() for r in range(page.table.rowCount())]
    assert names == ["(every tool)", "get_current_time", "convert_time"]
    assert page.table.item(1, 1).text().startswith("read-only, idempotent")
    cfg_dir = app.core.paths.config_dir
    assert load_tools(cfg_dir).grants == {}  # nothing granted by adding
    grant = page.table.cellWidget(1, 3)
    grant.setCurrentText("allow")
    page.table.cellWidget(2, 2).setCurrentText("destructive")
    cfg = load_tools(cfg_dir)
    assert cfg.grant_for("quick-ask", "time", "get_current_time") == "allow"
    assert cfg.grant_for("quick-ask", "time", "convert_time") is None
    assert cfg.servers["time"].classify == {"convert_time": "destructive"}
    page.agent.setCurrentText("meeting-minutes")
    assert page.table.cellWidget(1, 3).currentText() == "not granted"  # grants are per agent
    page.name.setText("bad name!")
    page.target.setText("x")
    page.add_btn.click()
    assert "not a valid server name" in page.status.text()
    page.remove_btn.click()
    assert load_tools(cfg_dir).servers == {} and load_tools(cfg_dir).grants == {}
