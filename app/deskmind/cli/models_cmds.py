"""models: which GGUF file answers for each class (fast, general, coder)."""

from __future__ import annotations

import argparse
import sys
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

    pl = ms.add_parser("pull", help="download a GGUF (HTTPS or Hugging Face resolve URL) or copy "
                       "a local one into the library; an interrupted pull resumes")
    pl.add_argument("source", help="https://... .gguf URL, a local .gguf file or an id from "
                    "models catalogue")
    pl.add_argument("--sha256", help="the file's expected sha256")
    pl.add_argument("--use", dest="use_cls", choices=MODEL_CLASSES,
                    help="choose it for this class once it is in")
    pl.set_defaults(func=cmd_pull)

    rm = ms.add_parser("remove", help="delete a model file from the library")
    rm.add_argument("name", help="its file name, as models list shows it")
    rm.set_defaults(func=cmd_remove)

    c = ms.add_parser("catalogue", help="recommended models per class, marking what fits this "
                      "machine's memory; pull one by its id")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_catalogue)

    ls = ms.add_parser("list", help="the library's GGUF files and the chosen model of each class")
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


def _progress_line(name: str):
    def show(done: int, total: int | None) -> None:
        if total:
            bar = "#" * int(30 * done / total)
            sys.stderr.write(f"\r{name}: [{bar:<30}] {done / 1e6:7.1f}/{total / 1e6:.1f} MB")
        else:
            sys.stderr.write(f"\r{name}: {done / 1e6:7.1f} MB")
        sys.stderr.flush()
    return show


def cmd_pull(args: argparse.Namespace) -> int:
    from deskmind.core.app import Core
    from deskmind.core.models import set_chosen_model
    from deskmind.core.models.download import pull
    from deskmind.core.routing.ledger import EgressLedger

    from deskmind.core.models.catalogue import CATALOGUE, entry

    if any(e.id == args.source for e in CATALOGUE):
        picked = entry(args.source)
        args.source, args.sha256 = picked.url, args.sha256 or picked.sha256
        args.use_cls = args.use_cls or picked.cls
    core = Core()
    ledger = EgressLedger(core.store) if "://" in args.source else None
    name = args.source.rstrip("/").rsplit("/", 1)[-1]
    try:
        res = pull(args.source, core.paths.data_dir, sha256=args.sha256, ledger=ledger,
                   progress=_progress_line(name))
    finally:
        sys.stderr.write("\n")
    print(f"{res.path.name}: {res.info.name or res.path.name} ({res.info.architecture or '?'}, "
          f"{res.info.size / 1e6:.1f} MB, sha256 {res.sha256}) in {res.path.parent}")
    if args.use_cls:
        set_chosen_model(core.paths, args.use_cls, res.path)
        print(f"{args.use_cls}: {res.path}")
    return 0


def cmd_catalogue(args: argparse.Namespace) -> int:
    from deskmind.core.models.catalogue import catalogue, machine_ram_mb

    ram = machine_ram_mb()
    rows = catalogue(ram)
    if args.json:
        print_json({"ram_mb": ram, "models": [e.to_dict(fits) for e, fits in rows]})
        return 0
    print(f"this machine: {ram / 1024:.1f} GB of memory")
    for e, fits in rows:
        print(f"{e.cls:8} {e.id:20} {e.size_mb / 1000:4.1f} GB download, needs "
              f"{e.ram_mb / 1024:.1f} GB  {'fits' if fits else 'too big for this machine'}")
    print("pull one with: deskmind models pull ID (it is then used for its class)")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from deskmind.core.errors import UserInputError
    from deskmind.core.models import load_choices, set_chosen_model
    from deskmind.core.models.download import library_dir

    paths = _paths()
    lib = library_dir(paths.data_dir)
    target = lib / args.name
    if "/" in args.name or not target.is_file():
        raise UserInputError(f"{args.name} is not in the library ({lib})")
    for cls, chosen in load_choices(paths).items():
        if chosen == target.resolve():
            set_chosen_model(paths, cls, None)
            print(f"{cls}: no model chosen")
    target.unlink()
    print(f"removed {target}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from deskmind.core.models import load_choices
    from deskmind.core.models.download import library_dir

    paths = _paths()
    choices = load_choices(paths)
    rows = {cls: (str(choices[cls]) if cls in choices else None) for cls in MODEL_CLASSES}
    lib = library_dir(paths.data_dir)
    files = sorted(p for p in lib.glob("*.gguf") if p.is_file()) if lib.is_dir() else []
    if args.json:
        print_json({"chosen": rows, "library": [
            {"name": p.name, "path": str(p), "bytes": p.stat().st_size} for p in files]})
        return 0
    for p in files:
        print(f"{p.name}  {p.stat().st_size / 1e6:.1f} MB")
    for cls, path in rows.items():
        gone = path is not None and not Path(path).is_file()
        print(f"{cls:8} {path or '(none chosen)'}{'  (file is gone)' if gone else ''}")
    return 0
