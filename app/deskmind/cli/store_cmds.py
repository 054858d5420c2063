"""store: where the memory lives (``show``), keeping it quick (``optimize``), the PostgreSQL
password (``password``), and copying a whole memory to another database (``copy``)."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from deskmind.cli.render import print_json
from deskmind.core.errors import StorageError, UserInputError

MAX_PASSWORD_CHARS = 1024
RESUME_HINT = ("the batches copied so far are kept: run the same command with --resume to go on "
               "from there")


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
    s = ss.add_parser(
        "copy", help="copy a whole memory (sources, chunks, vectors, links, logs) into an empty "
        "database: --to URL from the current memory, or --from URL into it",
        description="Copy a whole memory between SQLite files and PostgreSQL databases. The "
        "target must be empty (or hold an unfinished copy of the same source: --resume). "
        "Quit the Deskmind app first, so nothing changes during the copy.")
    s.add_argument("--from", dest="source", metavar="URL_OR_PATH",
                   help="the memory to copy (default: the current one)")
    s.add_argument("--to", dest="target", metavar="URL_OR_PATH",
                   help="where to copy it (default: the current memory's location)")
    s.add_argument("--resume", action="store_true",
                   help="continue a copy that was stopped, after its last batch")
    s.add_argument("--batch", type=int, default=1000, metavar="N",
                   help="rows per transaction and checkpoint (default 1000)")
    s.add_argument("--json", action="store_true", help="print the receipt as JSON")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_store_copy)


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
               "bytes": s["db_bytes"],
               "machine": {"id": here.id, "name": here.name},
               "other_machines": [{"id": i, "name": n} for i, n in sorted(others.items())]}
        if store.backend == "postgres":
            out.update({k: s[k] for k in ("server", "database", "user", "server_version",
                                          "pgvector", "memory_bytes")})
        from deskmind.core.memory.copy import copy_state

        out["copied_from"] = copy_state(store)
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
    print(f"this machine: {here.name} (id {here.id})")
    if others:
        print("files also indexed by: " + ", ".join(f"{n} (id {i})" for i, n in sorted(others.items())))
    print(f"sources: {out['sources']}  chunks: {out['chunks']}  vectors: {out['vectors']}")
    copied = out["copied_from"]
    if copied is not None and not copied["finished"]:
        print(f"unfinished copy of {copied['source']}: run 'deskmind store copy --from "
              f"{copied['source']} --to {out['url']} --resume' to finish it")
    elif copied is not None:
        print(f"copied from {copied['source']}")
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


def cmd_store_copy(args: argparse.Namespace) -> int:
    from deskmind.core.app import Core
    from deskmind.core.memory.backend import open_memory
    from deskmind.core.memory.copy import CopyMismatch, MemoryCopy, check_batch

    if not args.source and not args.target:
        raise UserInputError("say where to copy: --to URL copies the current memory there, "
                             "--from URL copies that memory into the current location")
    check_batch(args.batch)
    with Core() as core:
        here = core.memory_location()
        source = open_memory(args.source or here)
        try:
            target = open_memory(args.target or here)
        except BaseException:
            source.close()
            raise
        progress = CopyProgress(enabled=not args.no_progress and not args.json)
        try:
            receipt = MemoryCopy(source, target, batch=args.batch,
                                 on_progress=progress.update).run(resume=args.resume)
        except KeyboardInterrupt:
            progress.close()
            print(f"deskmind: copy stopped; {RESUME_HINT}", file=sys.stderr)
            return 130
        except StorageError as exc:
            if isinstance(exc, CopyMismatch):
                raise
            raise StorageError(f"{exc}; {RESUME_HINT}") from exc
        finally:
            progress.close()
            target.close()
            source.close()
    if args.json:
        print_json(receipt.as_dict())
        return 0
    print(f"copied {receipt.source} -> {receipt.target}"
          f"{' (resumed)' if receipt.resumed else ''} in {receipt.seconds:.1f} s")
    print("rows: " + ", ".join(f"{k} {v}" for k, v in receipt.tables.items()))
    print("vectors: " + (", ".join(f"index {k} {v}" for k, v in receipt.vectors.items())
                         or "none"))
    print(f"verified: every count matches; {receipt.same_top_hits}/{receipt.searches} sample "
          f"searches gave the same top hit on both sides")
    if receipt.nul_replaced:
        print(f"note: {receipt.nul_replaced} text values held NUL characters, which PostgreSQL "
              "cannot store: they became U+FFFD")
    return 0


class CopyProgress:
    """One line per step on stderr; on a terminal it updates in place."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._step: str | None = None
        self._last = 0.0

    def update(self, step: str, done: int, total: Any) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        new = step != self._step
        if not new and now - self._last < (0.1 if self.tty else 5.0) and done != total:
            return
        self._last = now
        text = f"{step}: {done}/{total}" if total is not None else f"{step}"
        if self.tty:
            sys.stderr.write(("\n" if new and self._step else "\r") + text + "   ")
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self._step = step

    def close(self) -> None:
        if self.enabled and self.tty and self._step:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self._step = None
