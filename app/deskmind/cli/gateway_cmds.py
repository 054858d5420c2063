"""serve, mcp, clients: the gateway from the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from typing import Any

from deskmind.cli.render import print_json
from deskmind.core.app import Core
from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run MCP, the OpenAI-compatible API, folder watching and "
                                     "backups with no GUI")
    p.add_argument("--mcp-http", action="store_true", help="serve MCP over HTTP at /mcp")
    p.add_argument("--api", action="store_true", help="serve the OpenAI-compatible API at /v1")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default from settings, 8765)")
    p.add_argument("--host", help="address to listen on (other than loopback needs "
                                  "[gateway] allow_remote = true)")
    p.add_argument("--no-watch", action="store_true", help="do not watch folders")
    p.add_argument("--no-backup", action="store_true", help="no scheduled backups")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("mcp", help="MCP server on stdin/stdout, for a client that launches it")
    p.add_argument("--client", required=True, metavar="NAME",
                   help="the name this client was granted as (deskmind clients grant NAME)")
    p.set_defaults(func=cmd_mcp)

    p = sub.add_parser("clients", help="outside clients of the gateway and their permissions")
    csub = p.add_subparsers(dest="clients_command", metavar="ACTION", required=True)

    c = csub.add_parser("list", help="every client, granted or waiting")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_clients_list)

    c = csub.add_parser("grant", help="let a client in, with these scopes")
    c.add_argument("name")
    c.add_argument("--read", choices=("none", "public", "personal", "private", "secret"),
                   help="the most private tag it may read (new clients: private)")
    c.add_argument("--write", action=argparse.BooleanOptionalAction, default=None,
                   help="may save notes into memory")
    c.add_argument("--ask", action=argparse.BooleanOptionalAction, default=None,
                   help="may ask questions / chat through your model runtimes")
    c.add_argument("--cloud", action=argparse.BooleanOptionalAction, default=None,
                   help="its requests may go to cloud models when a routing rule says so")
    c.add_argument("--ground", action=argparse.BooleanOptionalAction, default=None,
                   help="API chats get passages from memory added (needs --read)")
    c.add_argument("--rate", type=float, help="requests per second (default 20)")
    c.add_argument("--burst", type=int, help="requests at once before the rate applies (default 60)")
    c.add_argument("--token", action="store_true", help="also issue a new bearer token and show it")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_clients_grant)

    c = csub.add_parser("revoke", help="withdraw every permission and the token of a client")
    c.add_argument("name")
    c.set_defaults(func=cmd_clients_revoke)

    c = csub.add_parser("remove", help="forget a client entirely (its audit entries stay)")
    c.add_argument("name")
    c.set_defaults(func=cmd_clients_remove)

    c = csub.add_parser("token", help="issue a new bearer token (the old one stops working)")
    c.add_argument("name")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_clients_token)

    c = csub.add_parser("audit", help="what clients did and read")
    c.add_argument("name", nargs="?", help="only this client")
    c.add_argument("--limit", type=int, default=50)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_clients_audit)


def _gateway(core: Core) -> Any:
    from deskmind.core.gateway.integration import build_gateway

    return build_gateway(core)


def cmd_serve(args: argparse.Namespace) -> int:
    from deskmind.core.gateway.daemon import Daemon

    mcp_http, api = args.mcp_http, args.api
    if not mcp_http and not api:
        mcp_http = api = True
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UserInputError("--port must be between 0 and 65535")
    with Core() as core:
        gw = _gateway(core)
        if args.host and not gw.config.allow_remote and args.host not in ("127.0.0.1", "::1", "localhost"):
            raise UserInputError(
                f"--host {args.host} would accept other machines: set [gateway] allow_remote = true "
                f"in {core.paths.settings_path} first")
        daemon = Daemon(core, gw, mcp_http=mcp_http, api=api, watch=not args.no_watch,
                        backups=not args.no_backup, port=args.port, host=args.host)
        gw.warm_up()

        async def main() -> None:
            task = asyncio.create_task(daemon.run())
            while not daemon.started.is_set() and not task.done():
                await asyncio.sleep(0.05)
            if daemon.http is not None and daemon.http.server.started:
                parts = (["MCP at /mcp"] if mcp_http else []) + (["API at /v1"] if api else [])
                print(f"deskmind serving on {daemon.http.url}: {', '.join(parts)} "
                      "(Ctrl-C stops)", file=sys.stderr, flush=True)
            await task

        try:
            asyncio.run(main())
        finally:
            gw.settle()
        return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from deskmind.core.gateway.clients import check_name

    check_name(args.client)
    from deskmind.core.secrets import configure_logging

    # stdout belongs to the protocol: every log line goes to stderr (scrubbed of keys, as ever).
    configure_logging(logging.getLogger().level or logging.WARNING, stream=sys.stderr, replace=True)
    with Core() as core:
        gw = _gateway(core)
        client = gw.clients.get(args.client)
        if client is None or not client.granted:
            gw.clients.note_pending(args.client)
            print(f"deskmind: client '{args.client}' is not granted yet: its calls will be refused "
                  f"until you run 'deskmind clients grant {args.client}'", file=sys.stderr)
        gw.warm_up()

        async def main() -> None:
            try:
                await gw.mcp(fixed_client=args.client).run_stdio()
            finally:
                if gw.runtimes is not None:
                    await gw.runtimes.aclose()

        try:
            asyncio.run(main())
        finally:
            gw.settle()
            gw.audit.flush()
        return 0


def _registry(core: Core) -> Any:
    from deskmind.core.gateway.clients import ClientRegistry

    return ClientRegistry(core.store)


def cmd_clients_list(args: argparse.Namespace) -> int:
    with Core() as core:
        clients = _registry(core).list()
        if args.json:
            print_json([c.to_dict() for c in clients])
            return 0
        if not clients:
            print("no clients yet: 'deskmind clients grant NAME' lets one in")
            return 0
        for c in clients:
            seen = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.last_seen_at)) if c.last_seen_at else "never"
            token = "token" if c.has_token else "no token"
            scopes = c.scopes.describe() if c.granted else "nothing"
            print(f"{c.name:24} {c.status:8} {scopes}  [{token}, last seen {seen}]")
        return 0


def cmd_clients_grant(args: argparse.Namespace) -> int:
    from deskmind.core.gateway.clients import Scopes, check_name, with_changes

    check_name(args.name)
    with Core() as core:
        reg = _registry(core)
        old = reg.get(args.name)
        base = old.scopes if old is not None and old.status == "granted" else Scopes(read="private")
        scopes = with_changes(base, read=args.read, write=args.write, ask=args.ask,
                              cloud=args.cloud, ground=args.ground, rate=args.rate,
                              burst=args.burst)
        if scopes.ground and scopes.read == "none":
            raise UserInputError("--ground adds memory to chats, so it needs --read above none")
        client = reg.grant(args.name, scopes)
        token = None
        if args.token:
            token = reg.rotate_token(args.name)
            client = reg.get(args.name) or client  # now holding the token
        if args.json:
            d = client.to_dict()
            if token:
                d["token"] = token
            print_json(d)
            return 0
        print(f"granted {client.name}: {scopes.describe()}")
        if token:
            _show_token(client.name, token)
        elif not client.has_token:
            print(f"(for HTTP clients: 'deskmind clients token {client.name}' issues a bearer token)")
        return 0


def cmd_clients_revoke(args: argparse.Namespace) -> int:
    with Core() as core:
        c = _registry(core).revoke(args.name)
        print(f"revoked {c.name}: it can do nothing now and its token no longer works")
        return 0


def cmd_clients_remove(args: argparse.Namespace) -> int:
    with Core() as core:
        _registry(core).remove(args.name)
        print(f"removed {args.name}: its token no longer works; what it did stays in "
              "'deskmind clients audit'")
        return 0


def cmd_clients_token(args: argparse.Namespace) -> int:
    with Core() as core:
        token = _registry(core).rotate_token(args.name)
        if args.json:
            print_json({"client": args.name, "token": token})
        else:
            _show_token(args.name, token)
        return 0


def _show_token(name: str, token: str) -> None:
    print(f"bearer token for {name} (shown once; any earlier token no longer works):")
    print(token)


def cmd_clients_audit(args: argparse.Namespace) -> int:
    from deskmind.core.gateway.audit import GatewayAudit

    with Core() as core:
        entries = GatewayAudit(core.store).entries(client=args.name, limit=args.limit)
        if args.json:
            print_json([e.to_dict() for e in entries])
            return 0
        if not entries:
            print("nothing recorded")
            return 0
        for e in reversed(entries):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts))
            items = f"  read {', '.join(e.items[:8])}{'…' if len(e.items) > 8 else ''}" if e.items else ""
            why = f"  ({e.detail})" if e.detail else ""
            print(f"{when} {e.client:16} {e.surface:9} {e.action:14} {e.decision:7} {e.args}{why}{items}")
        return 0


def DOCTOR_CHECKS(core: Core) -> list[tuple[str, Any]]:  # noqa: N802  (name fixed by doctor)
    def clients() -> str:
        from deskmind.core.gateway.clients import ClientRegistry

        all_ = ClientRegistry(core.store).list()
        granted = [c for c in all_ if c.granted]
        pending = [c.name for c in all_ if c.status == "pending"]
        extra = f"; waiting for a grant: {', '.join(pending)}" if pending else ""
        return f"{len(granted)} granted client(s){extra}"

    def gateway_config() -> str:
        from deskmind.core.gateway.stack import GatewayConfig

        cfg = GatewayConfig.from_settings(core.settings)
        where = "this machine only" if not cfg.allow_remote else "other machines allowed"
        return f"{cfg.host}:{cfg.port}, {where}"

    return [("gateway settings", gateway_config), ("gateway clients", clients)]
