"""models: which GGUF file answers for each class (fast, general, coder)."""

from __future__ import annotations

import argparse
from pathlib import Path

from deskmind.cli.render import print_json
from deskmind.core.models import MODEL_CLASSES


def register(sub: argparse._SubParsersAction) -> None:
    # `deskmind models` alone lists the runtimes found (ask_cmds); the actions extend it.
    p = sub.choices.get("models") or sub.add_parser("models", help="the GGUF model of each class")
    ms = p.add_subparsers(dest="models_cmd", metavar="ACTION", required="func" not in p._defaults)

    u = ms.add_parser("use", help="choose a GGUF file for a class (it is checked first)",
                      description="Choose a GGUF file for a class: deskmind models use "
                      "~/models/qwen.gguf --class general. --clear forgets the choice.")
    u.add_argument("file", nargs="?", type=Path)
    u.add_argument("--class", dest="cls", choices=MODEL_CLASSES, default="general")
    u.add_argument("--clear", action="store_true", help="forget the class's choice")
    u.set_defaults(func=cmd_use)

    ls = ms.add_parser("list", help="the chosen model of each class")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)


def _paths():
    from deskmind.core.config.paths import Paths

    return Paths.from_env()


def cmd_use(args: argparse.Namespace) -> int:
    from deskmind.core.errors import UserInputError
    from deskmind.core.models import check_gguf, set_chosen_model

    if args.clear == (args.file is not None):
        raise UserInputError("give either a GGUF file or --clear")
    if args.clear:
        set_chosen_model(_paths(), args.cls, None)
        print(f"{args.cls}: no model chosen")
        return 0
    info = check_gguf(args.file)
    set_chosen_model(_paths(), args.cls, args.file)
    what = info.name or info.path.name
    print(f"{args.cls}: {what} ({info.architecture or 'unknown architecture'}, "
          f"{info.size / 1e6:.1f} MB) {info.path.resolve()}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from deskmind.core.models import load_choices

    choices = load_choices(_paths())
    rows = {cls: (str(choices[cls]) if cls in choices else None) for cls in MODEL_CLASSES}
    if args.json:
        print_json({"chosen": rows})
        return 0
    for cls, path in rows.items():
        gone = path is not None and not Path(path).is_file()
        print(f"{cls:8} {path or '(none chosen)'}{'  (file is gone)' if gone else ''}")
    return 0
