"""store: where the memory lives (``show``) and the PostgreSQL password (``password``)."""

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
        here = store.scope.machine
        others = {i: n for i, n in store.machines().items() if i != here.id}
        out = {"backend": store.backend, "url": redact_url(store.url),
               "sources": s["sources"], "chunks": s["chunks"],
               "vectors": (s["vector_index"] or {}).get("vectors", 0),
               "machine": {"id": here.id, "name": here.name},
               "other_machines": [{"id": i, "name": n} for i, n in sorted(others.items())]}
    if args.json:
        print_json(out)
        return 0
    print(f"memory: {out['url']} ({out['backend']})")
    print(f"sources: {out['sources']}  chunks: {out['chunks']}  vectors: {out['vectors']}")
    print(f"this machine: {here.name} (id {here.id})")
    if others:
        print("files also indexed by: " + ", ".join(f"{n} (id {i})" for i, n in sorted(others.items())))
    return 0


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
