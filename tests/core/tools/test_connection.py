"""One MCP server connection against real servers: listing with annotations, calls, and the
ways a server goes wrong (will not start, crashes, hangs, speaks something other than
JSON-RPC), each a clear error within its timeout, and the next use starting it again."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from deskmind.core.tools.client import ServerConnection, ToolServerError
from deskmind.core.tools.config import ServerSpec
from tests.core.tools.conftest import _module, fs_spec, git_spec, time_spec


def run(coro):
    return asyncio.run(coro)


def test_time_server_lists_annotated_tools_and_answers(tmp_path):
    async def main():
        c = ServerConnection(time_spec(), log_dir=tmp_path)
        try:
            tools = {t.name: t for t in await c.list_tools()}
            out = await c.call("get_current_time", {"timezone": "Europe/Paris"})
            return tools, out
        finally:
            await c.stop()

    tools, out = run(main())
    t = tools["get_current_time"]
    assert t.read_only is True and t.open_world is False and t.kind == "read-only"
    assert "time" in t.description.lower()
    assert json.loads(out.text)["timezone"] == "Europe/Paris" and not out.is_error and out.size > 20


def test_classification_follows_annotations_and_the_persons_override(tmp_path):
    repo = tmp_path / "repo"

    async def main(spec):
        c = ServerConnection(spec, log_dir=tmp_path)
        try:
            return {t.name: t for t in await c.list_tools()}
        finally:
            await c.stop()

    tools = run(main(git_spec()))
    assert tools["git_log"].kind == "read-only"
    assert tools["git_reset"].kind == "destructive" and tools["git_reset"].destructive is True
    assert tools["git_commit"].kind == "write"
    tools = run(main(git_spec(classify={"git_log": "destructive"})))
    assert tools["git_log"].kind == "destructive" and tools["git_log"].overridden
    notes = tmp_path / "notes"
    notes.mkdir()
    fs = run(main(fs_spec(notes)))
    assert fs["read_text_file"].kind == "read-only" and fs["write_file"].kind == "destructive"
    assert not repo.exists()


@pytest.mark.parametrize("command,args,expect", [
    ("sleep", ["60"], "did not complete the MCP handshake within 1.5 s"),
    ("sh", ["-c", "echo this is not json-rpc; sleep 60"], "not MCP's JSON-RPC"),
    ("/nonexistent/mcp-server", [], "the command was not found"),
])
def test_a_server_that_will_not_start_is_a_clear_error(tmp_path, command, args, expect):
    c = ServerConnection(ServerSpec("bad", command=command, args=args, start_timeout=1.5), log_dir=tmp_path)
    with pytest.raises(ToolServerError, match="could not be started") as err:
        run(c.list_tools())
    assert expect in str(err.value)
    assert not c.running


def test_a_real_server_that_exits_at_start_says_why(tmp_path):
    c = ServerConnection(git_spec(args=["--repository", str(tmp_path / "missing")], start_timeout=10),
                         log_dir=tmp_path)
    with pytest.raises(ToolServerError) as err:
        run(c.list_tools())
    assert "could not be started" in str(err.value) and "does not exist" in str(err.value)


def _wrapped_time(tmp_path, **kw) -> ServerSpec:
    # The real time server, its process id written down so the test can kill or freeze it.
    pid = tmp_path / "pid"
    return ServerSpec("time", command="sh", args=[
        "-c", f'echo $$ > "{pid}"; exec {" ".join(_module("mcp_server_time"))} --local-timezone UTC'], **kw)


def test_a_server_that_crashes_then_one_that_hangs_each_fail_the_call_and_restart(tmp_path):
    async def main():
        c = ServerConnection(_wrapped_time(tmp_path, call_timeout=2.0), log_dir=tmp_path)
        try:
            await c.list_tools()
            os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
            with pytest.raises(ToolServerError, match="stopped while calling get_current_time"):
                await c.call("get_current_time", {"timezone": "UTC"})
            assert not c.running
            ok = await c.call("get_current_time", {"timezone": "UTC"})  # started again
            assert c.starts == 2 and json.loads(ok.text)["timezone"] == "UTC"
            os.kill(int((tmp_path / "pid").read_text()), signal.SIGSTOP)
            with pytest.raises(ToolServerError, match="did not answer within 2 s"):
                await c.call("get_current_time", {"timezone": "UTC"})
            ok = await c.call("get_current_time", {"timezone": "UTC"})
            assert c.starts == 3 and not ok.is_error
        finally:
            await c.stop()

    run(main())


def test_an_idle_server_is_stopped_and_starts_on_next_use(tmp_path):
    async def main():
        c = ServerConnection(time_spec(idle_stop=0.3), log_dir=tmp_path)
        try:
            await c.call("get_current_time", {"timezone": "UTC"})
            for _ in range(200):
                if not c.running:
                    break
                await asyncio.sleep(0.05)
            assert not c.running
            await c.call("get_current_time", {"timezone": "UTC"})
            assert c.starts == 2
        finally:
            await c.stop()

    run(main())


def test_an_unknown_tool_is_the_servers_error_not_a_hang(tmp_path):
    async def main():
        c = ServerConnection(time_spec(), log_dir=tmp_path)
        try:
            out = await c.call("no_such_tool", {})
            return out
        except ToolServerError as exc:
            return exc
        finally:
            await c.stop()

    out = run(main())
    text = str(out) if isinstance(out, ToolServerError) else out.text
    assert "no_such_tool" in text or "Unknown tool" in text
