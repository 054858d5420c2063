"""The core never imports Qt: checked at run time (imports fail) and statically (source scan).

Each check also runs against a planted package that does import Qt, so a checker that has
stopped seeing anything fails here instead of passing quietly.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import deskmind

BLOCKED = ("PySide6", "PySide2", "PyQt5", "PyQt6", "qasync", "shiboken6", "shiboken2",
           "qtpy", "superqt", "pytestqt")
PACKAGE_ROOT = Path(deskmind.__file__).resolve().parent
CORE_DIR = PACKAGE_ROOT / "core"

# Runs in a fresh interpreter: a meta-path hook makes every Qt import fail and records the
# attempt (a module that swallows the ImportError is still caught), then imports every module.
_PROBE = textwrap.dedent(
    """
    import importlib, json, sys, traceback

    BLOCKED = set(json.loads(sys.argv[1]))
    package, names = sys.argv[2], json.loads(sys.argv[3])
    attempts = []
    current = [None]

    class QtBlocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                attempts.append({"module": current[0], "import": name})
                raise ImportError(f"Qt is not allowed in {package}: {name}")
            return None

    sys.meta_path.insert(0, QtBlocker())
    errors = {}
    for name in names:
        current[0] = name
        try:
            importlib.import_module(name)
        except BaseException as exc:
            errors[name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    print(json.dumps({"modules": names, "errors": errors, "attempts": attempts}))
    """
)


def module_names(package_dir: Path, package: str) -> list[str]:
    """Every module under a package folder, from its files (namespace folders included)."""
    names = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join([package, *parts]))
    return names


def probe_imports(package: str, package_dir: Path, sys_path: Path | None = None) -> dict:
    env_path = [str(sys_path)] if sys_path else []
    code = "import sys; sys.path[:0] = %r\n" % env_path + _PROBE
    names = module_names(package_dir, package)
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(BLOCKED), package, json.dumps(names)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def static_qt_imports(root: Path) -> list[str]:
    """``file:line: name`` for every import of a Qt package in the sources under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                fn = node.func
                fname = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                if fname in ("import_module", "__import__", "find_spec"):
                    names = [node.args[0].value]
            for n in names:
                if n.split(".")[0] in BLOCKED:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {n}")
    return found


def _planted_package(tmp_path: Path) -> Path:
    pkg = tmp_path / "plantedcore"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "clean.py").write_text("import json\n")
    (pkg / "eager.py").write_text(
        "try:\n    from PySide6 import QtCore\nexcept ImportError:\n    QtCore = None\n")
    (pkg / "lazy.py").write_text(
        "import importlib\n\ndef widget():\n    return importlib.import_module('qasync')\n")
    return tmp_path


def test_core_modules_import_without_qt() -> None:
    result = probe_imports("deskmind.core", CORE_DIR)
    assert len(result["modules"]) == len(list(CORE_DIR.rglob("*.py")))
    assert "deskmind.core.memory.store" in result["modules"]
    assert result["attempts"] == [], f"core modules tried to import Qt: {result['attempts']}"
    assert result["errors"] == {}, f"core modules that fail to import: {result['errors']}"


def test_core_sources_have_no_qt_imports() -> None:
    found = static_qt_imports(CORE_DIR)
    assert found == [], "Qt imported in the core:\n" + "\n".join(found)


def test_checks_catch_a_core_module_that_imports_qt(tmp_path: Path) -> None:
    root = _planted_package(tmp_path)
    result = probe_imports("plantedcore", root / "plantedcore", root)
    assert {a["module"] for a in result["attempts"]} == {"plantedcore.eager"}
    assert "plantedcore.clean" in result["modules"]
    found = static_qt_imports(root / "plantedcore")
    assert any("eager.py:2: PySide6" in f for f in found), found
    assert any("lazy.py:4: qasync" in f for f in found), found
    assert not any("clean.py" in f for f in found)
