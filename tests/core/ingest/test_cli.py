"""The ingestion commands end to end: index summary, sources, search locators, links, watch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deskmind.cli.main import main
from tests.core.ingest.conftest import make_pdf


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    root = tmp_path / "mixed"
    (root / "vault" / ".obsidian").mkdir(parents=True)
    (root / "vault" / "Ideas.md").write_text("# Ideas\n## Solar kettle\nA kettle heated by mirrors. See [[Budget]].\n")
    (root / "vault" / "Budget.md").write_text("# Budget\nMirrors cost twelve coins each.\n")
    (root / "report.pdf").write_bytes(make_pdf(["Intro page.", "The heliostat array tracks the sun."]))
    (root / "tool.py").write_text("def compute_heliostat_angle(sun, mirror):\n    '''Angle for a mirror.'''\n    return sun - mirror\n")
    (root / "page.html").write_text("<title>T</title><main><h1>Glossary</h1><p>Albedo is reflectivity.</p></main>")
    (root / "memo.mp3").write_bytes(b"ID3" + b"\0" * 100)
    (root / "empty.txt").write_bytes(b"")
    return root


def test_index_sources_search_links(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deskmind.core.ingest import transcribe

    previous = transcribe.get_transcriber()
    transcribe.set_transcriber(None)  # no speech engine in this run
    try:
        _index_sources_search_links(mixed, capsys)
    finally:
        transcribe.set_transcriber(previous)


def _index_sources_search_links(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(mixed), "--json", "--no-transcribe"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["by_kind"]["markdown"]["indexed"] == 2 and d["by_kind"]["pdf"]["indexed"] == 1
    assert d["by_kind"]["audio"] == {"queued": 1}
    assert d["skipped"] == 1 and d["problems"][0]["reason"] == "empty file (zero bytes)"
    assert d["ignored"] >= 1  # .obsidian/
    assert d["timings"]["embed"] > 0

    assert main(["index", str(mixed), "--no-transcribe"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("indexed 0, unchanged 7")
    assert "  pdf" in out and "unchanged 1" in out

    assert main(["sources", "--json"]) == 0
    srcs = {Path(s["uri"]).name: s for s in json.loads(capsys.readouterr().out)}
    assert srcs["memo.mp3"]["status"] == "queued" and "no speech engine" in srcs["memo.mp3"]["error"]
    assert srcs["empty.txt"]["status"] == "skipped"
    assert srcs["Ideas.md"]["collection"] == "vault"
    assert main(["sources", "--status", "queued"]) == 0
    out = capsys.readouterr().out
    assert "memo.mp3" in out and "wait for transcription: no speech engine is registered" in out
    assert main(["sources", "--kind", "pdf", "--json"]) == 0
    assert [s["kind"] for s in json.loads(capsys.readouterr().out)] == ["pdf"]

    assert main(["search", "heliostat array tracks the sun", "--json", "--limit", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["kind"] == "pdf" and hits[0]["locator"]["page"] == 2
    assert main(["search", "compute_heliostat_angle", "--json", "--limit", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["locator"]["symbol"] == "compute_heliostat_angle"
    assert main(["search", "kettle heated by mirrors", "--json", "--limit", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["locator"]["heading"] == ["Ideas", "Solar kettle"]
    assert main(["search", "heliostat array", "--limit", "1"]) == 0
    assert "§ p.2" in capsys.readouterr().out

    assert main(["links", str(mixed / "vault" / "Budget.md"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [b["source_uri"] for b in d["backlinks"]] == [str(mixed / "vault" / "Ideas.md")]
    assert main(["collections"]) == 0
    assert "vault  (obsidian, 2 sources)" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(tmp_path / "missing")]) != 0
    assert capsys.readouterr().err.strip() == f"deskmind: no such file or folder: {tmp_path / 'missing'}"
    assert main(["watch"]) != 0
    assert "nothing to watch" in capsys.readouterr().err
    assert main(["sources"]) == 0
    assert "no sources yet" in capsys.readouterr().out


def test_watch_command_runs_for_a_while(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.md").write_text("# A\nwatched")
    (tmp_path / "b.txt").write_bytes(b"")
    assert main(["watch", str(tmp_path), "--for", "0.2", "--debounce", "0.1"]) == 0
    out = capsys.readouterr().out
    assert f"watching {tmp_path}" in out and "indexed 1" in out and "empty file" in out


def test_doctor_check_for_parsers(core) -> None:
    from deskmind.cli.ingest_cmds import DOCTOR_CHECKS

    [(name, check)] = DOCTOR_CHECKS(core)
    assert name == "ingestion parsers" and "tree-sitter grammars" in check()
