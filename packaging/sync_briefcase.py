"""Copy briefcase.toml's [tool.briefcase] into pyproject.toml (Briefcase reads only the latter).

    python packaging/sync_briefcase.py          # write
    python packaging/sync_briefcase.py --check  # exit 1 when they differ

Only the ``[tool.briefcase]`` tables of pyproject.toml are replaced; everything else, comments
included, is kept as it is (tomlkit round-trips the file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import tomlkit

ROOT = Path(__file__).resolve().parents[1]


def _source(root: Path) -> Any:
    """briefcase.toml's [tool.briefcase], with the app's requirements taken from pyproject."""
    doc = tomlkit.parse((root / "briefcase.toml").read_text(encoding="utf-8"))
    project = tomlkit.parse((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    table = doc["tool"]["briefcase"]
    for app in table["app"].values():
        for key, deps in (("requires", project.get("dependencies", [])),
                          ("test_requires", project.get("optional-dependencies", {}).get("test", []))):
            if key not in app:
                arr = tomlkit.array()
                arr.extend(str(d) for d in deps)
                arr.multiline(True)
                app[key] = arr
    return table


def wanted(root: Path = ROOT) -> dict[str, Any]:
    return _source(root).unwrap()


def current(root: Path = ROOT) -> dict[str, Any] | None:
    doc = tomlkit.parse((root / "pyproject.toml").read_text(encoding="utf-8"))
    tool = doc.get("tool")
    return tool["briefcase"].unwrap() if tool is not None and "briefcase" in tool else None


def sync(root: Path = ROOT) -> bool:
    """Write pyproject.toml when it differs; True when something changed."""
    if current(root) == wanted(root):
        return False
    path = root / "pyproject.toml"
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    tool = doc.setdefault("tool", tomlkit.table(is_super_table=True))
    if "briefcase" in tool:
        del tool["briefcase"]
    tool["briefcase"] = _source(root)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report whether they agree")
    args = ap.parse_args(argv)
    if args.check:
        same = current() == wanted()
        print("pyproject.toml [tool.briefcase] matches briefcase.toml" if same else
              "pyproject.toml [tool.briefcase] differs from briefcase.toml: run packaging/sync_briefcase.py")
        return 0 if same else 1
    print("pyproject.toml updated" if sync() else "already in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
