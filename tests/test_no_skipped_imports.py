"""A test may skip when an optional third-party package is missing, never when one of the
project's own modules fails to import: that is a defect, and it has to fail loudly.

The scan parses every test file and flags ``pytest.importorskip("deskmind...")`` (and the
same call through an alias). It also runs on a planted file, so a scanner that has stopped
seeing anything fails here instead of passing quietly.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
PROJECT = "deskmind"


def _skipped_project_imports(source: str, filename: str) -> list[str]:
    found = []
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name != "importorskip" or not node.args:
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            module = arg.value
            if module == PROJECT or module.startswith(PROJECT + "."):
                found.append(f"{filename}:{node.lineno}: importorskip({module!r})")
    return found


def test_the_scanner_sees_a_planted_importorskip():
    planted = (
        "import pytest\n"
        "from pytest import importorskip\n"
        "pytest.importorskip('PySide6')\n"
        "pytest.importorskip('deskmind.core.speech')\n"
        "importorskip('deskmind')\n"
    )
    hits = _skipped_project_imports(planted, "planted.py")
    assert hits == ["planted.py:4: importorskip('deskmind.core.speech')",
                    "planted.py:5: importorskip('deskmind')"]


def test_no_test_skips_when_a_project_module_fails_to_import():
    files = sorted(TESTS_DIR.rglob("*.py"))
    assert len(files) > 20, f"the scan found only {len(files)} test files under {TESTS_DIR}"
    offenders = []
    for path in files:
        if path.resolve() == Path(__file__).resolve():
            continue
        offenders += _skipped_project_imports(path.read_text(encoding="utf-8"),
                                              str(path.relative_to(TESTS_DIR.parent)))
    assert not offenders, "import the module plainly so an import error fails:\n" + "\n".join(offenders)
