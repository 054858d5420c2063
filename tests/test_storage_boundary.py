"""No SQL outside ``core/memory``: nothing else imports a database driver, holds a connection,
runs a statement or writes SQL text. The scan also runs over planted files that break each
rule, so a checker that has stopped seeing anything fails here instead of passing quietly.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import deskmind

PACKAGE_ROOT = Path(deskmind.__file__).resolve().parent
MEMORY_DIR = PACKAGE_ROOT / "core" / "memory"

DRIVERS = ("sqlite3", "sqlean", "psycopg", "psycopg2", "psycopg_pool", "apsw", "pysqlite3")
# Attribute calls that mean "I hold a connection or a transaction".
CALLS = ("execute", "executemany", "executescript", "reader", "transaction",
         "submit_transaction")
# SELECT … FROM and DELETE FROM in capitals, as the project writes SQL ("Delete from memory"
# is a menu item); the other statements in any case (no sentence reads "update x set").
CAPITALS = re.compile(r"\bSELECT\b[\s\S]+?\bFROM\b|\bDELETE\s+FROM\b")
ANY_CASE = re.compile(
    r"\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\bCREATE\s+(VIRTUAL\s+)?TABLE\b|\bPRAGMA\s+\w+",
    re.IGNORECASE,
)


def violations_in(path: Path, source: str) -> list[str]:
    """``file:line: what`` for every way this file reaches past the storage boundary."""
    found = []
    tree = ast.parse(source, filename=str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in DRIVERS:
                    found.append(f"{where}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.module and node.module.split(".")[0] in DRIVERS:
                found.append(f"{where}: imports {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in CALLS:
                found.append(f"{where}: calls .{node.func.attr}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and (CAPITALS.search(node.value)
                                                or ANY_CASE.search(node.value)):
                found.append(f"{where}: SQL in a string: {node.value[:60]!r}")
    return found


def scan(root: Path, skip: Path | None = None) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if skip is not None and path.is_relative_to(skip):
            continue
        found.extend(violations_in(path.relative_to(root), path.read_text(encoding="utf-8")))
    return found


def test_no_sql_outside_core_memory() -> None:
    found = scan(PACKAGE_ROOT, skip=MEMORY_DIR)
    assert not found, "storage reached outside core/memory:\n" + "\n".join(found)


def test_the_scan_sees_every_kind_of_violation(tmp_path: Path) -> None:
    planted = tmp_path / "pkg"
    (planted / "core" / "memory").mkdir(parents=True)
    (planted / "core" / "memory" / "store.py").write_text(
        "import sqlean\nQ = 'SELECT id FROM sources'\n")
    (planted / "ui.py").write_text(textwrap.dedent('''
        """A module whose docstring may say SELECT x FROM y."""
        import sqlite3
        from psycopg import sql
        import json

        def f(store, conn):
            """Only docstrings are exempt: DELETE FROM t."""
            conn.execute("SELECT 1")
            store.reader()
            store.writer.transaction(lambda c: None)
            c.executemany("x", [])
            a = "SELECT text FROM documents WHERE source_id = ?"
            b = "insert into t(a) values (1)"
            c = "INSERT OR IGNORE INTO t VALUES (1)"
            d = f"UPDATE sources SET x = {1}"
            e = "DELETE FROM chunks"
            g = "CREATE TABLE t (x)"
            h = "SELECT a, b\\n  FROM t"
            ok = "select the files you want from the list; Delete from memory"
            return json.dumps([a, b, c, d, e, g, h, ok])
        '''))
    found = scan(planted, skip=planted / "core" / "memory")
    lines = sorted(int(f.split(":")[1]) for f in found)
    assert all(f.startswith("ui.py:") for f in found), found
    # imports (2), calls (4), SQL strings (a, b, c, d, e, g, h); not the docstrings, not json,
    # not English that happens to hold "select" and "from" (without a keyword after SELECT)
    assert lines == [3, 4, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19], found
    assert any("imports psycopg" in f for f in found)
    assert any("calls .transaction()" in f for f in found)
