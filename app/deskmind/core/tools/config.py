"""The person's MCP servers and tool grants, declared in ``tools.toml`` in the config folder.

::

    [servers.notes]
    transport = "stdio"                 # or "http"
    command = "npx"
    args = ["@modelcontextprotocol/server-filesystem", "/home/me/notes"]
    env = {}
    privacy = "private"                 # what its results count as when routing (default private)
    [servers.notes.classify]            # the person's own view of a tool, over its annotations
    write_file = "destructive"

    [grants.quick-ask.notes]            # agent -> server -> tool (or "*") -> allow | always
    list_directory = "allow"

A bearer token of an HTTP server lives in the OS keyring (``mcp.<server>``), never here.
Nothing is granted unless written under ``[grants]``.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskmind.core.errors import UserInputError
from deskmind.core.memory.models import PRIVACY_LEVELS

log = logging.getLogger(__name__)

FILE_NAME = "tools.toml"
TRANSPORTS = ("stdio", "http")
# How a tool is treated: read-only may run outright once granted; the others ask each time
# unless the grant is "always".
KINDS = ("read-only", "write", "destructive", "open-world")
GRANTS = ("allow", "always")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}")
AGENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,70}")  # gateway clients are client:NAME

DEFAULT_START_TIMEOUT = 20.0
DEFAULT_CALL_TIMEOUT = 30.0
DEFAULT_IDLE_STOP = 300.0


@dataclass
class ServerSpec:
    name: str
    transport: str = "stdio"
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    privacy: str = "private"
    start_timeout: float = DEFAULT_START_TIMEOUT
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    idle_stop: float = DEFAULT_IDLE_STOP
    classify: dict[str, str] = field(default_factory=dict)

    @property
    def secret_name(self) -> str:
        return f"mcp.{self.name}"

    def describe(self) -> str:
        if self.transport == "http":
            return self.url
        return " ".join([self.command, *self.args])

    def to_toml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"transport": self.transport, "privacy": self.privacy}
        if self.transport == "http":
            out["url"] = self.url
        else:
            out["command"] = self.command
            out["args"] = list(self.args)
            if self.env:
                out["env"] = dict(self.env)
        for key, default in (("start_timeout", DEFAULT_START_TIMEOUT),
                             ("call_timeout", DEFAULT_CALL_TIMEOUT), ("idle_stop", DEFAULT_IDLE_STOP)):
            if getattr(self, key) != default:
                out[key] = getattr(self, key)
        if self.classify:
            out["classify"] = dict(self.classify)
        return out


@dataclass
class ToolsConfig:
    servers: dict[str, ServerSpec] = field(default_factory=dict)
    # agent -> server -> tool name or "*" -> "allow" | "always"
    grants: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    path: Path | None = None

    def grant_for(self, agent: str, server: str, tool: str) -> str | None:
        per = self.grants.get(agent, {}).get(server, {})
        return per.get(tool) or per.get("*")

    def set_grant(self, agent: str, server: str, tool: str, grant: str | None) -> None:
        check_name(agent, "agent")
        if server not in self.servers:
            raise UserInputError(f"no tool server named '{server}' (see deskmind tools list)")
        if grant is not None and grant not in GRANTS:
            raise UserInputError(f"'{grant}' is not a grant: use one of {', '.join(GRANTS)}")
        per = self.grants.setdefault(agent, {}).setdefault(server, {})
        if grant is None:
            per.pop(tool, None)
        else:
            per[tool] = grant

    def to_toml(self) -> dict[str, Any]:
        grants = {a: {s: dict(t) for s, t in per.items() if t} for a, per in self.grants.items()}
        return {"servers": {n: s.to_toml() for n, s in self.servers.items()},
                "grants": {a: per for a, per in grants.items() if per}}


def check_name(name: str, what: str = "server") -> str:
    pattern = AGENT_RE if what == "agent" else NAME_RE
    # A model sees server__tool: a "__" in a server's name could make two tools one name.
    if not isinstance(name, str) or not pattern.fullmatch(name) or (what == "server" and "__" in name):
        raise UserInputError(f"'{name}' is not a valid {what} name (letters, digits, . _ -, no "
                             "'__'; up to 40, starting with a letter or digit)")
    return name


def tools_path(config_dir: Path) -> Path:
    return Path(config_dir) / FILE_NAME


def parse_server(name: str, d: Any, where: str = FILE_NAME) -> ServerSpec:
    at = f"{where} [servers.{name}]"
    try:
        check_name(name)
    except UserInputError as exc:
        raise UserInputError(f"{at}: {exc}") from None
    if not isinstance(d, dict):
        raise UserInputError(f"{at}: expected a table")
    known = set(ServerSpec.__dataclass_fields__) - {"name"}
    unknown = set(d) - known
    if unknown:
        raise UserInputError(f"{at}: unknown keys {', '.join(sorted(unknown))}")
    s = ServerSpec(name=name, **{k: v for k, v in d.items()})
    if s.transport not in TRANSPORTS:
        raise UserInputError(f"{at}: transport must be one of {', '.join(TRANSPORTS)}, not {s.transport!r}")
    if s.transport == "stdio":
        if not isinstance(s.command, str) or not s.command.strip():
            raise UserInputError(f"{at}: a stdio server needs a command")
        if not isinstance(s.args, list) or not all(isinstance(a, str) for a in s.args):
            raise UserInputError(f"{at}: args must be a list of strings")
        if not isinstance(s.env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in s.env.items()):
            raise UserInputError(f"{at}: env must be a table of strings")
    else:
        if not isinstance(s.url, str) or not re.match(r"https?://", s.url):
            raise UserInputError(f"{at}: an http server needs a url starting with http:// or https://")
    if s.privacy not in PRIVACY_LEVELS:
        raise UserInputError(f"{at}: privacy must be one of {', '.join(PRIVACY_LEVELS)}")
    for key in ("start_timeout", "call_timeout", "idle_stop"):
        v = getattr(s, key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 86400:
            raise UserInputError(f"{at}: {key} must be a number of seconds between 0 and 86400")
        setattr(s, key, float(v))
    if not isinstance(s.classify, dict) or any(v not in KINDS for v in s.classify.values()):
        raise UserInputError(f"{at}: classify values must be one of {', '.join(KINDS)}")
    return s


def load_tools(config_dir: Path) -> ToolsConfig:
    path = tools_path(config_dir)
    cfg = ToolsConfig(path=path)
    if not path.exists():
        return cfg
    try:
        raw = path.read_bytes()
        if len(raw) > 1_000_000:
            raise UserInputError(f"{path} is larger than 1 MB: not read")
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    unknown = set(data) - {"servers", "grants"}
    if unknown:
        raise UserInputError(f"{path}: unknown tables {', '.join(sorted(unknown))}")
    for name, d in (data.get("servers") or {}).items():
        cfg.servers[name] = parse_server(name, d, str(path))
    for agent, per in (data.get("grants") or {}).items():
        check_name(agent, "agent")
        if not isinstance(per, dict):
            raise UserInputError(f"{path} [grants.{agent}]: expected a table of servers")
        for server, tools in per.items():
            if not isinstance(tools, dict) or any(v not in GRANTS for v in tools.values()):
                raise UserInputError(f"{path} [grants.{agent}.{server}]: each tool maps to one of "
                                     f"{', '.join(GRANTS)}")
            cfg.grants.setdefault(agent, {})[server] = dict(tools)
    return cfg


def save_tools(cfg: ToolsConfig, config_dir: Path) -> Path:
    """Written whole to a new file renamed over the old one: a crash never leaves half a file."""
    import tomlkit

    path = tools_path(config_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# Deskmind's MCP tool servers and what each agent may call (see docs/tools.md).\n"
            + tomlkit.dumps(cfg.to_toml()))
    fd, tmp = tempfile.mkstemp(prefix=".tools.", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    cfg.path = path
    return path
