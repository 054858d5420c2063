"""User mistakes on the memory commands: one line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deskmind.cli.main import main
from deskmind.core.app import Core

from tests.cli.conftest import assert_one_line_error, run_deskmind
from tests.core.memory.helpers import count, home_memory, note


@pytest.fixture
def stored(deskmind_home: Path, tmp_path: Path) -> dict:
    """A home holding two sources (no vectors needed for these checks)."""
    f = tmp_path / "kept.txt"
    f.write_text("kept\n")
    with Core() as core:
        a = core.store.put_source(note("the first thing to keep", uri="deskmind://note/a"))
        b = core.store.put_source(note("kept file text", uri=str(f), kind="text"))
    return {"a": a, "b": b, "file": f, "home": deskmind_home}


def run_main(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str, *fragments: str) -> str:
    assert code not in (0, None), err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


MISTAKES = {
    "bad --since": (["search", "x", "--since", "31/01/2024"], ["--since wants a date like 2026-01-31", "31/01/2024"]),
    "bad --until": (["search", "x", "--until", "yesterday"], ["--until wants a date", "yesterday"]),
    "since after until": (["search", "x", "--since", "2025-01-01", "--until", "2024-01-01"], ["is not before --until"]),
    "--limit 0": (["search", "x", "--limit", "0"], ["--limit must be at least 1"]),
    "--limit -3": (["search", "x", "--limit", "-3"], ["--limit must be at least 1"]),
    "--limit abc": (["search", "x", "--limit", "abc"], ["deskmind search", "invalid int value: 'abc'"]),
    "no query": (["search"], ["deskmind search", "required: query"]),
    "unknown --source": (["search", "x", "--source", "/no/such/place"], ["no source matches '/no/such/place'"]),
    "bad --privacy": (["search", "x", "--privacy", "secrte"], ["--privacy 'secrte' is not a privacy tag", "secret"]),
    "bad --mode": (["search", "x", "--mode", "psychic"], ["invalid choice: 'psychic'"]),
    "forget unknown id": (["forget", "987654"], ["nothing in memory matches '987654'"]),
    "forget unknown path": (["forget", "/no/such/file.txt"], ["nothing in memory matches '/no/such/file.txt'"]),
    "forget nothing": (["forget"], ["deskmind forget", "required"]),
    "reembed unknown model": (["reembed", "--model", "no-such-model"], ["unknown embedding model 'no-such-model'"]),
    "index missing path": (["index", "/no/such/folder"], ["no such file or folder: /no/such/folder"]),
    "unknown command": (["remember-everything"], ["invalid choice: 'remember-everything'"]),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_mistake_gives_one_line(case: str, stored: dict, capsys: pytest.CaptureFixture) -> None:
    argv, fragments = MISTAKES[case]
    code, _out, err = run_main(argv, capsys)
    one_line(code, err, *fragments)
    assert err.startswith("deskmind")
    with home_memory(stored["home"]) as store:
        assert count(store, "SELECT count(*) FROM sources") == 2  # nothing stored was touched


def test_forget_with_one_unknown_reference_forgets_nothing(stored: dict, capsys: pytest.CaptureFixture) -> None:
    code, _out, err = run_main(["forget", str(stored["a"]), "/no/such/thing"], capsys)
    one_line(code, err, "'/no/such/thing'", "nothing was forgotten")
    code, out, err = run_main(["forget", str(stored["a"]), str(stored["file"]), "--json"], capsys)
    assert code == 0, err
    assert [r["sources"][0]["id"] for r in json.loads(out)] == [stored["a"], stored["b"]]


def test_backup_over_an_existing_file(stored: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "already.db"
    dest.write_text("precious")
    code, _out, err = run_main(["backup", str(dest)], capsys)
    one_line(code, err, "already exists")
    assert dest.read_text() == "precious"


def test_backup_to_a_missing_folder_is_an_error(stored: dict, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "no" / "such" / "dir" / "x.db"
    code, out, err = run_main(["backup", str(dest)], capsys)
    one_line(code, err, str(dest.parent), "not a folder")
    assert "backup written" not in out
    assert not (tmp_path / "no").exists()


def test_broken_settings_file(stored: dict, deskmind_home: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = deskmind_home / "config" / "settings.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("[embedder\nmodel_id = 3\n")
    code, _out, err = run_main(["stats"], capsys)
    one_line(code, err, str(cfg))


def test_the_real_process_prints_one_line(stored: dict) -> None:
    """The same contract seen from outside: exit codes and stderr of the real command."""
    assert_one_line_error(run_deskmind("search", "x", "--since", "01.02.2024"), "--since wants a date", code=2)
    assert_one_line_error(run_deskmind("forget", "424242"), "nothing in memory matches", code=2)
    assert_one_line_error(run_deskmind("search", "x", "--limit", "zero"), "invalid int value", code=2)
    assert_one_line_error(run_deskmind("index", "/no/such/folder"), "no such file or folder", code=2)
