"""tools: the MCP servers agents may use (add, list, remove, test) and what each agent may call."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from typing import Any

from deskmind.cli.render import print_json
from deskmind.core.errors import UserInputError
from deskmind.core.memory.models import PRIVACY_LEVELS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tools", help="MCP tool servers and what each agent may call on them")
    ts = p.add_subparsers(dest="tools_cmd", metavar="ACTION", required=True)

    a = ts.add_parser("add", help="add a server: NAME -- COMMAND [ARGS...] (stdio) or NAME --url URL",
                      description="Add an MCP server. Stdio: deskmind tools add notes -- npx "
                      "@modelcontextprotocol/server-filesystem ~/notes. Streamable HTTP: deskmind "
                      "tools add remote --url https://host/mcp --token (the token is read from "
                      "stdin or a prompt and kept in the OS keyring).")
    a.add_argument("name")
    a.add_argument("--url", help="a Streamable HTTP server's endpoint")
    a.add_argument("--token", action="store_true", help="ask for a bearer token (kept in the OS keyring)")
    a.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment of a stdio server (repeatable)")
    a.add_argument("--privacy", choices=PRIVACY_LEVELS, default="private",
                   help="what its results count as when routing to a model (default private)")
    a.add_argument("--start-timeout", type=float)
    a.add_argument("--call-timeout", type=float)
    a.add_argument("--idle-stop", type=float, help="stop it after this many idle seconds")
    a.add_argument("--replace", action="store_true", help="replace a server of that name")
    a.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    a.set_defaults(func=cmd_add)

    ls = ts.add_parser("list", help="servers, their tools (with --tools) and the grants")
    ls.add_argument("--tools", action="store_true", help="start each server and list its tools")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    r = ts.add_parser("remove", help="remove a server, its grants and its token")
    r.add_argument("name")
    r.set_defaults(func=cmd_remove)

    t = ts.add_parser("test", help="start a server, list its tools and optionally call one")
    t.add_argument("name")
    t.add_argument("--call", metavar="TOOL", help="call this tool (bypasses no permission: "
                   "it runs as you, not as an agent)")
    t.add_argument("--args", default="{}", help="the call's arguments as JSON")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_test)

    g = ts.add_parser("grant", help="let an agent call a server's tools (none are by default)")
    g.add_argument("agent", help="quick-ask, dictation, meeting-minutes or a gateway client")
    g.add_argument("server")
    g.add_argument("tool", nargs="*", help="tool names (default: every tool of the server)")
    g.add_argument("--always", action="store_true",
                   help="never ask before writing, destructive or open-world tools (default: ask each time)")
    g.add_argument("--revoke", action="store_true", help="take the grant back")
    g.add_argument("--folder", action="append", default=[],
                   help="a folder the agent's tools may read (added to its read_paths)")
    g.add_argument("--write-folder", action="append", default=[],
                   help="a folder the agent's tools may write (added to its write_paths)")
    g.set_defaults(func=cmd_grant)

    c = ts.add_parser("classify", help="your own view of a tool: read-only, write, destructive, open-world")
    c.add_argument("server")
    c.add_argument("tool")
    c.add_argument("kind", nargs="?", help="omit to go back to the server's annotations")
    c.set_defaults(func=cmd_classify)


def _paths() -> Any:
    from deskmind.core.config.paths import Paths

    return Paths.from_env()


def _load() -> Any:
    from deskmind.core.tools.config import load_tools

    return load_tools(_paths().config_dir)


def _save(cfg: Any) -> None:
    from deskmind.core.tools.config import save_tools

    save_tools(cfg, _paths().config_dir)


def cmd_add(args: argparse.Namespace) -> int:
    from deskmind.core.tools.config import ServerSpec, parse_server

    cfg = _load()
    if args.name in cfg.servers and not args.replace:
        raise UserInputError(f"a tool server named '{args.name}' exists: remove it or pass --replace")
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else list(args.command)
    if bool(args.url) == bool(command):
        raise UserInputError("give either --url URL or -- COMMAND [ARGS...]")
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserInputError(f"--env {item!r}: expected KEY=VALUE")
        env[key] = value
    d: dict[str, Any] = {"privacy": args.privacy}
    if args.url:
        d.update(transport="http", url=args.url)
    else:
        d.update(transport="stdio", command=command[0], args=command[1:], env=env)
    for key in ("start_timeout", "call_timeout", "idle_stop"):
        if getattr(args, key) is not None:
            d[key] = getattr(args, key)
    spec: ServerSpec = parse_server(args.name, d, "the command line")
    if args.token:
        if spec.transport != "http":
            raise UserInputError("--token is for HTTP servers")
        from deskmind.core.secrets import SecretStore

        token = (getpass.getpass(f"bearer token for {args.name} (not shown): ") if sys.stdin.isatty()
                 else sys.stdin.readline())
        SecretStore().set(spec.secret_name, token)
    cfg.servers[args.name] = spec
    _save(cfg)
    print(f"added {args.name} ({spec.transport}: {spec.describe()}); no agent may use it until "
          f"you grant it: deskmind tools grant quick-ask {args.name}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    cfg = _load()
    spec = cfg.servers.pop(args.name, None)
    if spec is None:
        raise UserInputError(f"no tool server named '{args.name}'")
    for per in cfg.grants.values():
        per.pop(args.name, None)
    _save(cfg)
    if spec.transport == "http":
        from deskmind.core.secrets import SecretStore

        try:
            SecretStore().delete(spec.secret_name)
        except Exception:  # no keyring: nothing was stored there
            pass
    print(f"removed {args.name} and its grants")
    return 0


async def _list_tools(cfg: Any, names: list[str]) -> dict[str, Any]:
    from deskmind.core.tools.registry import ToolServers

    servers = ToolServers(cfg, secrets=_secrets(), log_dir=_paths().log_dir)
    out: dict[str, Any] = {}
    try:
        for name in names:
            t0 = time.perf_counter()
            try:
                tools = await servers.tools(name)
                out[name] = {"tools": [t.to_dict() for t in tools],
                             "start_ms": round((time.perf_counter() - t0) * 1000)}
            except Exception as exc:  # one broken server is reported, the others listed
                out[name] = {"error": str(exc)}
    finally:
        await servers.aclose()
    return out


def _secrets() -> Any:
    from deskmind.core.secrets import SecretStore

    return SecretStore()


def _print_tools(name: str, info: dict[str, Any], cfg: Any) -> None:
    if "error" in info:
        print(f"  could not list its tools: {info['error']}")
        return
    for t in info["tools"]:
        a = t["annotations"]
        hints = ", ".join(k.replace("_", "-") for k, v in a.items() if v) or "no hints"
        grants = [f"{agent}:{g}" for agent in cfg.grants
                  if (g := cfg.grant_for(agent, name, t["name"]))]
        print(f"  {t['name']}  [{t['kind']}{' (yours)' if t['overridden'] else ''}; {hints}]"
              f"{'  granted to ' + ', '.join(grants) if grants else ''}")
        if t["description"]:
            print(f"      {t['description'].splitlines()[0][:110]}")


def cmd_list(args: argparse.Namespace) -> int:
    cfg = _load()
    listed = asyncio.run(_list_tools(cfg, list(cfg.servers))) if args.tools else {}
    if args.json:
        print_json({"servers": {n: {**s.to_toml(), **listed.get(n, {})} for n, s in cfg.servers.items()},
                    "grants": cfg.grants})
        return 0
    if not cfg.servers:
        print("no tool servers: add one with deskmind tools add NAME -- COMMAND [ARGS...]")
        return 0
    for name, s in cfg.servers.items():
        print(f"{name}  ({s.transport}, results {s.privacy}): {s.describe()}")
        if name in listed:
            _print_tools(name, listed[name], cfg)
    for agent, per in cfg.grants.items():
        for server, tools in per.items():
            if tools:
                print(f"grant: {agent} -> {server}: " + ", ".join(f"{t} ({g})" for t, g in tools.items()))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    import json

    cfg = _load()
    if args.name not in cfg.servers:
        raise UserInputError(f"no tool server named '{args.name}'")
    try:
        call_args = json.loads(args.args)
    except ValueError as exc:
        raise UserInputError(f"--args is not JSON: {exc}") from None
    if not isinstance(call_args, dict):
        raise UserInputError("--args must be a JSON object")

    async def main() -> dict[str, Any]:
        from deskmind.core.tools.registry import ToolServers

        servers = ToolServers(cfg, secrets=_secrets(), log_dir=_paths().log_dir)
        try:
            t0 = time.perf_counter()
            tools = await servers.tools(args.name)
            res: dict[str, Any] = {"tools": [t.to_dict() for t in tools],
                                   "start_ms": round((time.perf_counter() - t0) * 1000)}
            if args.call:
                out = await servers.connection(args.name).call(args.call, call_args)
                res["call"] = {"tool": args.call, "is_error": out.is_error, "bytes": out.size,
                               "text": out.text}
            return res
        finally:
            await servers.aclose()

    res = asyncio.run(main())
    if args.json:
        print_json(res)
        return 0
    print(f"{args.name} started and listed {len(res['tools'])} tools in {res['start_ms']} ms")
    _print_tools(args.name, res, cfg)
    if "call" in res:
        c = res["call"]
        print(f"{c['tool']} {'failed' if c['is_error'] else 'answered'} ({c['bytes']} B):\n{c['text']}")
        return 1 if c["is_error"] else 0
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    from deskmind.core.agents.folders import add_agent_folder

    cfg = _load()
    tools = args.tool or ["*"]
    grant = None if args.revoke else ("always" if args.always else "allow")
    for tool in tools:
        cfg.set_grant(args.agent, args.server, tool, grant)
    _save(cfg)
    cfg_dir = _paths().config_dir
    for folder in args.folder:
        add_agent_folder(cfg_dir, args.agent, folder)
    for folder in args.write_folder:
        add_agent_folder(cfg_dir, args.agent, folder, write=True)
    which = "every tool" if tools == ["*"] else ", ".join(tools)
    if grant is None:
        print(f"{args.agent} may no longer call {which} of {args.server}")
    else:
        print(f"{args.agent} may call {which} of {args.server}: read-only tools run at once; "
              + ("the others too (always for this agent)" if args.always
                 else "writing, destructive and open-world ones ask you each time"))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from deskmind.core.tools.config import KINDS

    cfg = _load()
    spec = cfg.servers.get(args.server)
    if spec is None:
        raise UserInputError(f"no tool server named '{args.server}'")
    if args.kind is None:
        spec.classify.pop(args.tool, None)
    elif args.kind not in KINDS:
        raise UserInputError(f"'{args.kind}' is not one of {', '.join(KINDS)}")
    else:
        spec.classify[args.tool] = args.kind
    _save(cfg)
    print(f"{args.server}/{args.tool}: " + (args.kind or "as its annotations say"))
    return 0
