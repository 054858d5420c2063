"""Entry point: parse the command line, run one command, turn errors into one clear line."""

from __future__ import annotations

import argparse
import codecs
import errno
import io
import logging
import os
import sys
from typing import Callable, NoReturn, Sequence

from deskmind import __version__
from deskmind.core.errors import DeskmindError
from deskmind.core.memory import uris

log = logging.getLogger("deskmind")

Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes reported as one line like every other error."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from deskmind.cli import doctor, memory_cmds
    from deskmind.cli.groups import command_modules

    parser = _Parser(
        prog="deskmind",
        description="Deskmind: your own computer as your AI. With no command, starts the tray app.",
    )
    parser.add_argument("--version", action="version", version=f"deskmind {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    memory_cmds.register(sub)
    doctor.register(sub)
    for extra in command_modules():
        extra.register(sub)
    return parser


def _replace_undecodable(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeEncodeError):
        raise err
    return uris.replace_undecodable(err.object[err.start:err.end]), err.end


codecs.register_error("deskmind-replace-undecodable", _replace_undecodable)


def printable_output() -> None:
    """A file name whose bytes are not UTF-8 (held as lone surrogates) prints with U+FFFD in
    their place rather than ending the command with a UnicodeEncodeError (UTF-8 locales) or
    writing bytes that are not UTF-8 (the C locale)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if isinstance(stream, io.TextIOWrapper) and encoding == "utf8":
            stream.reconfigure(errors="deskmind-replace-undecodable")


def main(argv: Sequence[str] | None = None) -> int:
    from deskmind.core.config.environment import keep_writes_home
    from deskmind.core.config.paths import Paths

    keep_writes_home(Paths.from_env())  # before any command imports onnxruntime
    printable_output()
    parser = build_parser()
    args = parser.parse_args(argv)
    from deskmind.core.secrets import configure_logging

    configure_logging(logging.DEBUG if args.verbose else logging.WARNING)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        # No command: the tray app, when its module is installed; otherwise the help.
        app_cmds = sys.modules.get("deskmind.cli.app_cmds")
        if app_cmds is None:
            parser.print_help()
            return 0
        func = app_cmds.run_app
    try:
        return func(args) or 0
    except DeskmindError as exc:
        print(f"deskmind: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("deskmind: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into something that stopped reading (| head): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        reason = _environment_failure(exc)
        if reason is None or args.verbose:
            raise  # a bug: the traceback is what helps
        print(f"deskmind: {reason}", file=sys.stderr)
        return 3


_DB_TROUBLE = ("malformed", "not a database", "corrupt", "disk", "full", "i/o", "readonly",
               "read-only", "unable to open", "locked")


def _environment_failure(exc: BaseException) -> str | None:
    """One line for a failure of the machine or of the database file met where no code turned
    it into a DeskmindError (a damaged database found mid-query, a disk gone read-only)."""
    sqlite = sys.modules.get("sqlean")
    if sqlite is not None and isinstance(exc, sqlite.DatabaseError):
        if any(word in str(exc).lower() for word in _DB_TROUBLE):
            return (f"the memory database failed: {exc} ('deskmind doctor' checks it; "
                    "-v shows details)")
        return None
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EIO,
                                                  getattr(errno, "EDQUOT", -1)):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror} (-v shows details)"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
