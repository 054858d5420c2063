"""tools.toml: what a person writes by hand is checked, with errors that say where and what."""

from __future__ import annotations

import pytest

from deskmind.core.errors import UserInputError
from deskmind.core.tools.config import ServerSpec, ToolsConfig, load_tools, save_tools, tools_path


def write(tmp_path, text: str):
    tools_path(tmp_path).write_text(text)
    return tmp_path


@pytest.mark.parametrize("text,expect", [
    ("[servers.a\n", "tools.toml"),
    ('[servers.a]\ntransport = "pigeon"\ncommand = "x"\n', "transport must be one of stdio, http"),
    ('[servers.a]\ncommand = ""\n', "a stdio server needs a command"),
    ('[servers.a]\ntransport = "http"\nurl = "ftp://x"\n', "needs a url starting with http"),
    ('[servers.a]\ncommand = "x"\nprivacy = "hush"\n', "privacy must be one of"),
    ('[servers.a]\ncommand = "x"\ncall_timeout = -1\n', "call_timeout must be a number of seconds"),
    ('[servers.a]\ncommand = "x"\nshell = true\n', "unknown keys shell"),
    ('[servers.a]\ncommand = "x"\n[servers.a.classify]\nt = "harmless"\n', "classify values must be one of"),
    ('[servers."a__b"]\ncommand = "x"\n', "not a valid server name"),
    ('[grants.quick-ask.a]\nt = "sometimes"\n', "each tool maps to one of allow, always"),
    ('[plugins]\n', "unknown tables plugins"),
])
def test_bad_files_are_refused_with_where_and_what(tmp_path, text, expect):
    with pytest.raises(UserInputError) as err:
        load_tools(write(tmp_path, text))
    assert expect in str(err.value) and "tools.toml" in str(err.value)


def test_round_trip_keeps_servers_grants_and_overrides(tmp_path):
    cfg = ToolsConfig(servers={"notes": ServerSpec("notes", command="node", args=["s.js", "/n"],
                                                   env={"A": "1"}, privacy="personal",
                                                   call_timeout=5, classify={"read_file": "destructive"}),
                               "remote": ServerSpec("remote", transport="http", url="https://h/mcp")})
    cfg.set_grant("quick-ask", "notes", "*", "allow")
    cfg.set_grant("client:claude", "remote", "search", "always")
    save_tools(cfg, tmp_path)
    back = load_tools(tmp_path)
    assert back.to_toml() == cfg.to_toml()
    assert back.grant_for("quick-ask", "notes", "anything") == "allow"
    assert back.grant_for("client:claude", "remote", "search") == "always"
    assert back.grant_for("dictation", "notes", "read_file") is None  # nothing by default
    assert "token" not in tools_path(tmp_path).read_text()
    with pytest.raises(UserInputError, match="no tool server named 'nope'"):
        cfg.set_grant("quick-ask", "nope", "*", "allow")
