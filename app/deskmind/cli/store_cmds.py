"""store: where the memory lives (``show``), keeping it quick (``optimize``) and the
PostgreSQL password (``password``)."""

from __future__ import annotations

import argparse
import getpass
import sys

from deskmind.cli.render import print_json
from deskmind.core.errors import UserInputError

MAX_PASSWORD_CHARS = 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="where the memory lives, and its database password")
    ss = p.add_subparsers(dest="store_cmd", metavar="ACTION", required=True)
    s = ss.add_parser("show", help="the memory's location (never a password), backend and counts")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_store_show)
    s = ss.add_parser("optimize", help="reclaim the space of forgotten things and refresh the "
                      "database's statistics (VACUUM); --reindex also rebuilds the indexes")
    s.add_argument("--reindex", action="store_true",
                   help="rebuild every index too (the vector and full-text indexes included)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_store_optimize)
    s = ss.add_parser("password", help="keep a PostgreSQL password in the OS keyring "
                      "(asked for without echo, or read from stdin)")
    s.add_argument("url", metavar="URL", help="postgresql://user@host:port/dbname (no password)")
    s.add_argument("--stdin", action="store_true", help="read the password from stdin")
    s.set_defaults(func=cmd_store_password)


def cmd_store_show(args: argparse.Namespace) -> int:
    from deskmind.core.app import Core
    from deskmind.core.memory.urls import redact_url

    with Core() as core:
        store = core.store
        s = store.stats()
        out = {"backend": store.backend, "url": redact_url(store.url),
               "sources": s["sources"], "chunks": s["chunks"],
               "vectors": (s["vector_index"] or {}).get("vectors", 0),
               "bytes": s["db_bytes"]}
        if store.backend == "postgres":
            out.update({k: s[k] for k in ("server", "database", "user", "server_version",
                                          "pgvector", "memory_bytes")})
    if args.json:
        print_json(out)
        return 0
    print(f"memory: {out['url']} ({out['backend']})")
    if out["backend"] == "postgres":
        print(f"server: {out['server']}  database: {out['database']}  user: {out['user']}  "
              f"PostgreSQL {out['server_version']}, pgvector {out['pgvector']}")
        print(f"size: {mb(out['memory_bytes'])} in Deskmind's tables "
              f"({mb(out['bytes'])} for the whole database)")
    else:
        print(f"size: {mb(out['bytes'])}")
    print(f"sources: {out['sources']}  chunks: {out['chunks']}  vectors: {out['vectors']}")
    return 0


def cmd_store_optimize(args: argparse.Namespace) -> int:
    from deskmind.core.app import Core

    with Core() as core:
        done = core.store.optimize(reindex=args.reindex)
    if args.json:
        print_json(done)
    else:
        rebuilt = f", rebuilt {', '.join(done['reindexed'])}" if done["reindexed"] else ""
        dropped = f", removed {', '.join(done['dropped'])}" if done["dropped"] else ""
        print(f"optimized in {done['seconds']:.1f} s: {mb(done['bytes_before'])} before, "
              f"{mb(done['bytes_after'])} after{rebuilt}{dropped}")
    if done["failed"]:
        for f in done["failed"]:
            print(f"deskmind: could not rebuild {f}", file=sys.stderr)
        return 1
    return 0


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_store_password(args: argparse.Namespace) -> int:
    from deskmind.core.memory.urls import parse_location, redact_url
    from deskmind.core.secrets import SecretStore

    loc = parse_location(args.url)
    if loc.backend != "postgres":
        raise UserInputError(f"'{redact_url(args.url)}' is not a PostgreSQL URL: a SQLite file "
                             "needs no password")
    if args.stdin or not sys.stdin.isatty():
        value = sys.stdin.readline(MAX_PASSWORD_CHARS + 1)
        if len(value.rstrip("\r\n")) > MAX_PASSWORD_CHARS:
            raise UserInputError(f"the password is longer than {MAX_PASSWORD_CHARS} characters: "
                                 "nothing stored")
    else:
        value = getpass.getpass(f"password for {redact_url(loc.url)} (not shown): ")
    store = SecretStore()
    store.set_database_password(loc.keyring_key, value)
    print(f"stored the password for {loc.keyring_key} in {store.describe_backend()}")
    return 0
