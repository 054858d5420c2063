"""A gateway client is an agent too (``client:NAME``): its MCP ``ask`` may use the tools
granted to it; nobody can approve from the gateway, so tools that need approval are denied."""

from __future__ import annotations

import asyncio

from deskmind.core.agents.audit import AuditLog
from deskmind.core.tools.config import ToolsConfig, save_tools
from tests.core.agents.test_injection import tool_results
from tests.core.gateway.conftest import grant, memory  # noqa: F401
from tests.core.gateway.mcp_util import data, http_client
from tests.core.gateway.test_openai_api import rules, serve
from tests.core.tools.conftest import fs_spec, time_spec
from tests.fakes.llm_server import FakeLLMServer, Reply


def test_a_gateway_clients_ask_uses_its_granted_tools(core, memory, tmp_path):  # noqa: F811
    notes = tmp_path / "notes"
    notes.mkdir()
    cfg = ToolsConfig(servers={"time": time_spec(), "notes": fs_spec(notes)})
    cfg.set_grant("client:claude", "time", "get_current_time", "allow")
    cfg.set_grant("client:claude", "notes", "write_file", "allow")
    save_tools(cfg, core.paths.config_dir)

    def model(body):
        results = tool_results(body)
        if not results:
            return Reply("", tool_calls=[("time__get_current_time", {"timezone": "UTC"}),
                                         ("notes__write_file", {"path": str(notes / "x.md"), "content": "x"})])
        return Reply("Tools said: " + " | ".join(results))

    with FakeLLMServer(script=model) as rt:
        gw, srv = serve(core, rules(rt.url))
        try:
            token = grant(gw, "claude", read="public", ask=True)

            async def go():
                async with http_client(srv.url, token) as c:
                    return data(await c.call_tool("ask", {"question": "what time is it?"}))

            res = asyncio.run(go())
        finally:
            srv.stop()
            gw.audit.flush()
    assert [(c["tool"], c["decision"]) for c in res["tool_calls"]] == [
        ("time__get_current_time", "allowed"), ("notes__write_file", "denied")]
    assert '"timezone": "UTC"' in res["answer"] and not (notes / "x.md").exists()
    # the gateway's own entries (connect, ask) are in the same log
    assert [(e.agent, e.tool, e.decision) for e in AuditLog(core.store).entries() if "/" in e.tool] == [
        ("client:claude", "time/get_current_time", "allowed"),
        ("client:claude", "notes/write_file", "denied")]
