"""Entry point: parse the command line, run one command, turn errors into one clear line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, NoReturn, Sequence

from deskmind import __version__
from deskmind.core.errors import DeskmindError

log = logging.getLogger("deskmind")

Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes reported as one line like every other error."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from deskmind.cli import doctor, memory_cmds

    parser = _Parser(
        prog="deskmind",
        description="Deskmind: your own computer as your AI. With no command, starts the tray app.",
    )
    parser.add_argument("--version", action="version", version=f"deskmind {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    memory_cmds.register(sub)
    doctor.register(sub)
    for extra in _optional_command_modules():
        extra.register(sub)
    return parser


def _optional_command_modules() -> list:
    """Command groups that live in their own modules; each has ``register(subparsers)``."""
    import importlib

    mods = []
    for name in ("ingest_cmds", "ask_cmds", "speech_cmds", "gateway_cmds", "app_cmds"):
        try:
            mods.append(importlib.import_module(f"deskmind.cli.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"deskmind.cli.{name}":
                raise
    return mods


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
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


if __name__ == "__main__":
    raise SystemExit(main())
