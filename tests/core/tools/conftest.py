"""Real MCP servers the project did not write: mcp-server-time and mcp-server-git (PyPI) and
@modelcontextprotocol/server-filesystem (npm, installed by packaging/setup-debian.sh --test)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from deskmind.core.tools.config import ServerSpec

ROOT = Path(__file__).resolve().parents[3]


def _module(name: str) -> list[str]:
    """The server run as ``python -m``: the same interpreter as the tests, wherever its
    scripts were installed."""
    import importlib.util

    if importlib.util.find_spec(name) is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return [sys.executable, "-m", name]


def fs_server_js() -> str:
    base = Path(os.environ.get("DESKMIND_TEST_NODE", ROOT / ".test-node"))
    js = base / "node_modules" / "@modelcontextprotocol" / "server-filesystem" / "dist" / "index.js"
    if not js.exists():
        pytest.fail(f"{js} is missing: run packaging/setup-debian.sh --test (it npm-installs "
                    "@modelcontextprotocol/server-filesystem there)")
    return str(js)


def time_spec(name: str = "time", **kw) -> ServerSpec:
    cmd = _module("mcp_server_time")
    return ServerSpec(name, command=cmd[0], args=[*cmd[1:], "--local-timezone", "UTC", *kw.pop("args", [])], **kw)


def git_spec(name: str = "git", **kw) -> ServerSpec:
    cmd = _module("mcp_server_git")
    return ServerSpec(name, command=cmd[0], args=[*cmd[1:], *kw.pop("args", [])], **kw)


def fs_spec(folder: Path, name: str = "notes", **kw) -> ServerSpec:
    return ServerSpec(name, command="node", args=[fs_server_js(), str(folder)], **kw)
