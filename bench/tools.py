"""MCP tool servers: start time of each real server, and what Deskmind's checks add to a call.

    .venv/bin/python bench/tools.py [--calls 50]

For the time server (PyPI) and the filesystem server (npm, in .test-node/): the time from
nothing to a listed tool set (process start + MCP handshake + tools/list), then the median of
``--calls`` calls made three ways in one run: the SDK's client alone, Deskmind's connection
(timeouts, crash and garbage detection), and the whole gate an agent goes through (grant,
privacy, folder scope on real paths, audit write to SQLite). Prints the load average too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def bench(calls: int) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    from deskmind.core.agents.audit import AuditLog
    from deskmind.core.agents.mcp_gate import McpGate
    from deskmind.core.agents.permissions import Scopes
    from deskmind.core.app import Core
    from deskmind.core.routing.config import AgentConfig
    from deskmind.core.runtimes.base import ToolCall
    from deskmind.core.tools.config import ServerSpec, ToolsConfig
    from deskmind.core.tools.registry import ToolServers, model_name

    tmp = Path(tempfile.mkdtemp(prefix="bench-tools-"))
    os.environ["DESKMIND_HOME"] = str(tmp / "home")
    notes = tmp / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("hello")
    js = ROOT / ".test-node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
    cases = [
        (ServerSpec("time", command=sys.executable, args=["-m", "mcp_server_time", "--local-timezone", "UTC"]),
         "get_current_time", {"timezone": "UTC"}),
        (ServerSpec("notes", command="node", args=[str(js), str(notes)]),
         "list_directory", {"path": str(notes)}),
    ]
    core = Core()
    audit = AuditLog(core.store)
    print(f"load average: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    for spec, tool, args in cases:
        cfg = ToolsConfig(servers={spec.name: spec})
        cfg.set_grant("bench", spec.name, "*", "allow")
        servers = ToolServers(cfg, log_dir=tmp)
        t0 = time.perf_counter()
        await servers.tools(spec.name)
        start_ms = (time.perf_counter() - t0) * 1000
        gate = McpGate(servers, Scopes(AgentConfig("bench", read_paths=[str(notes)])), audit,
                       zone_ceiling="secret")
        await gate.load()
        conn = servers.connection(spec.name)
        params = StdioServerParameters(command=spec.command, args=spec.args)
        async with Client(stdio_client(params, errlog=open(os.devnull, "w"))) as raw:
            await raw.list_tools()
            sdk, ours, gated = [], [], []
            for _ in range(calls):
                t = time.perf_counter()
                await raw.call_tool(tool, args)
                sdk.append(time.perf_counter() - t)
                t = time.perf_counter()
                await conn.call(tool, args)
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                res = await gate.call(ToolCall("c", model_name(spec.name, tool), args))
                gated.append(time.perf_counter() - t)
                assert res.decision == "allowed", res.content
        await servers.aclose()
        m = [statistics.median(x) * 1000 for x in (sdk, ours, gated)]
        print(f"{spec.name}: start to listed tools {start_ms:.0f} ms; call p50 SDK alone {m[0]:.2f} ms, "
              f"connection {m[1]:.2f} ms ({m[1] / m[0]:.2f}x), through the gate with audit "
              f"{m[2]:.2f} ms ({m[2] / m[0]:.2f}x)")
    core.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=50)
    asyncio.run(bench(ap.parse_args().calls))


if __name__ == "__main__":
    main()
