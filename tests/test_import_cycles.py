"""No two modules of the package import each other, directly or around a longer loop.

The graph is read from the sources with :mod:`ast`: every ``import`` and ``from ... import``,
at module level and inside functions (a deferred import still ties the two modules together).
Only ``if TYPE_CHECKING:`` blocks are left out, since they never run. The checker is first run
against a planted package with a loop, so a checker that has stopped seeing edges fails here.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import deskmind

PACKAGE_ROOT = Path(deskmind.__file__).resolve().parent


def _module_files(package_dir: Path, package: str) -> dict[str, Path]:
    files = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        files[".".join([package, *parts])] = path
    return files


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST):
    """Import nodes anywhere in the tree, except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for child in ast.iter_child_nodes(node):
            if not _is_type_checking(child):
                stack.append(child)


def import_graph(package_dir: Path, package: str) -> dict[str, dict[str, int]]:
    """module -> {imported module of the same package: line of the first such import}."""
    files = _module_files(package_dir, package)
    graph: dict[str, dict[str, int]] = {name: {} for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = name.split(".")
                    base = base[:len(base) - node.level + (1 if is_package else 0)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                for alias in node.names:
                    sub = f"{origin}.{alias.name}"
                    targets.append(sub if sub in files else origin)
            for target in targets:
                # "import a.b.c" names a.b.c; keep the longest prefix that is one of ours
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].setdefault(target, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def describe(graph: dict[str, dict[str, int]], group: list[str]) -> str:
    members = set(group)
    edges = [f"  {a} -> {b} (line {line})" for a in group for b, line in sorted(graph[a].items())
             if b in members]
    return "\n".join([" <-> ".join(group), *edges])


def _plant(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "planted"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return pkg


def test_the_checker_sees_a_planted_loop(tmp_path):
    pkg = _plant(tmp_path, {
        "__init__.py": "",
        "a.py": "from planted.b import helper\n",
        "b.py": "def helper():\n    from . import c\n    return c\n",
        "c.py": "import planted.a\n",
        "sub/__init__.py": "",
        "sub/d.py": "from ..a import helper\nfrom typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from planted.sub import e\n",
        "sub/e.py": "from planted.sub.d import helper\n",
    })
    graph = import_graph(pkg, "planted")
    assert graph["planted.b"] == {"planted.c": 2}            # a function-level, relative import
    assert graph["planted.sub.d"] == {"planted.a": 1}        # TYPE_CHECKING left out
    assert cycles(graph) == [["planted.a", "planted.b", "planted.c"]]
    assert "planted.b -> planted.c (line 2)" in describe(graph, cycles(graph)[0])


def test_no_module_of_deskmind_imports_itself_round_a_loop():
    graph = import_graph(PACKAGE_ROOT, "deskmind")
    assert len(graph) > 100 and sum(map(len, graph.values())) > 300   # it saw the package
    found = cycles(graph)
    assert not found, "import loops:\n" + "\n".join(describe(graph, g) for g in found)
