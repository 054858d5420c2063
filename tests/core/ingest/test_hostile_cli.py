"""``deskmind index`` in a subprocess on files made to exhaust a naive indexer: each gets an
outcome that says what happened, the run stays within time and memory, the good note beside
them is searchable, and Ctrl+C (or the tray's stop) ends a stuck parse within a second."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.core.ingest.hostile_files import (big_docx, gzip_of_text, nested_divs, own_stream_pdf,
                                             shared_stream_pdf, understated_docx)

# Runs the command given and prints its exit code, output, wall time and the peak RSS of it and
# its descendants (the parser processes), which nothing else in this wrapper inflates.
_MEASURE = r"""
import json, resource, subprocess, sys, time
t0 = time.monotonic()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"code": r.returncode, "out": r.stdout, "err": r.stderr,
                  "seconds": time.monotonic() - t0,
                  "cpu_s": (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN)),
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _settings(home: Path, **extraction: float) -> None:
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    lines = ["[extraction]"] + [f"{k} = {v}" for k, v in extraction.items()]
    (config / "settings.toml").write_text("\n".join(lines) + "\n")


def _index_measured(folder: Path) -> dict:
    cmd = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "deskmind", "index", str(folder),
           "--json", "--no-progress", "--no-transcribe"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_hostile_files_beside_a_good_note(tmp_path: Path, deskmind_home: Path, core) -> None:
    # Budgets scaled down so the run takes seconds; each file is still far past them.
    _settings(deskmind_home, max_inflated_mb=16, max_text_mb=0.1, max_pages=500, max_seconds=60)
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "kingfisher.md").write_text("# Kingfisher\nThe kingfisher dives for minnows at dawn.\n")
    gzip_of_text(folder / "server.log.gz", inflated_mb=12)
    (folder / "shared.pdf").write_bytes(shared_stream_pdf(pages=4000, lines=20))
    (folder / "understated.docx").write_bytes(understated_docx(real_mb=8))
    (folder / "deep.html").write_bytes(nested_divs(400_000))
    (folder / "huge.docx").write_bytes(big_docx(document_mb=40))
    assert all(f.stat().st_size < 10 * 1024 * 1024 for f in folder.iterdir())

    run = _index_measured(folder)
    assert run["code"] == 0, run["err"]
    summary = json.loads(run["out"])
    outcome = {Path(o["path"]).name: (o["status"], o["reason"] or "") for o in summary["partly"] + summary["problems"]}
    indexed_part = {n for n, (st, _) in outcome.items() if st == "indexed"}

    assert outcome["server.log.gz"] == ("indexed", "kept the first 0.1 MB of text of 12 MB "
                                        "(text budget per file: 0.1 MB; Settings → Indexing)")
    assert re.fullmatch(r"kept the first 0\.1 MB of text, from pages 1 to \d+ of 4,000 "
                        r"\(text budget per file: 0\.1 MB; Settings → Indexing\)", outcome["shared.pdf"][1])
    assert outcome["understated.docx"][0] == "failed"
    assert outcome["understated.docx"][1].startswith(
        "corrupt DOCX: part word/document.xml does not match its header")
    assert outcome["deep.html"][1].startswith("kept the first 0.1 MB of text of 1.1 MB")
    assert outcome["huge.docx"][1].startswith(
        "stopped reading word/document.xml after inflating 16 MB (inflate budget per file: 16 MB")
    assert indexed_part == {"server.log.gz", "shared.pdf", "deep.html", "huge.docx"}
    assert summary["indexed"] == 5 and summary["failed"] == 1

    # Before: the nested divs alone took ~40 minutes per million (here 400,000: ~8 minutes) and
    # the shared-stream PDF ran for minutes with RSS rising into gigabytes.
    # The CPU time of the run and its parser processes is what the files cost; the wall clock
    # also counts waiting for a core on a shared machine (147 s at a load average of 20).
    assert run["cpu_s"] < 90, run
    assert run["seconds"] < 600, run
    assert run["peak_mb"] < 1024, run

    hits = core.searcher().search("kingfisher minnows", limit=3).hits
    assert hits and Path(hits[0].source).name == "kingfisher.md"
    sources = {Path(s.uri).name: s for s in core.store.list_sources()}
    assert sources["shared.pdf"].status == "indexed"


def test_text_output_names_files_indexed_in_part(tmp_path: Path, deskmind_home: Path) -> None:
    _settings(deskmind_home, max_text_mb=0.05)
    gzip_of_text(tmp_path / "app.log.gz", inflated_mb=1)
    res = subprocess.run([sys.executable, "-m", "deskmind", "index", str(tmp_path), "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("indexed 1,")
    assert (f"deskmind: indexed part of {tmp_path / 'app.log.gz'}: kept the first 0.05 MB of text of "
            "1.0 MB (text budget per file: 0.05 MB; Settings → Indexing)") in res.stderr
    res = subprocess.run([sys.executable, "-m", "deskmind", "sources"], capture_output=True, text=True, timeout=120)
    assert ("indexed in part: kept the first 0.05 MB of text of 1.0 MB (text budget per file: 0.05 MB; "
            "Settings → Indexing)") in res.stdout, res.stdout + res.stderr


def test_a_parser_over_its_memory_limit_is_refused_and_replaced(tmp_path: Path, deskmind_home: Path) -> None:
    _settings(deskmind_home, parser_memory_mb=256)
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "huge.html").write_bytes((b"<p>" + b"word " * 20 + b"</p>\n") * 300_000)  # 32 MB
    for n in range(3):
        (folder / f"page{n}.html").write_text(f"<title>Page {n}</title><p>Ordinary page number {n}.</p>")
    run = _index_measured(folder)
    summary = json.loads(run["out"])
    outcome = {Path(o["path"]).name: (o["status"], o["reason"]) for o in summary["problems"]}
    assert outcome == {"huge.html": ("failed", "refused: parsing needed more than 256 MB of memory (memory "
                                     "limit per parser: 256 MB; Settings → Indexing)")}
    assert summary["indexed"] == 3
    assert run["peak_mb"] < 1024, run


def _busy_parser(parent: psutil.Process, timeout: float = 60.0) -> psutil.Process:
    """The parent's parser process once it has spent a second parsing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in parent.children(recursive=True):
            try:
                # the fork server (which has parser processes of its own) is not one
                if child.cpu_times().user > 1.0 and not child.children():
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.1)
    raise AssertionError("no parser process got busy")


def _stop_while_parsing(cmd: list[str], stop, said: str = "cancelled"
                        ) -> tuple[float, float | None, str, str, int, psutil.Process]:
    """Start ``cmd``; once its parser is busy, ``stop(proc)``: (seconds from the stop to the
    exit, seconds from the stop to a line of stderr holding ``said``, stdout, stderr, exit
    code, the parser process)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: err_lines.extend((time.monotonic(), line) for line in proc.stderr),
                              daemon=True)
    reader.start()
    try:
        parser = _busy_parser(psutil.Process(proc.pid))
        stop(proc)
        t0 = time.monotonic()
        proc.wait(timeout=30)
        took = time.monotonic() - t0
        out = proc.stdout.read()
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    answered = next((t - t0 for t, line in err_lines if said in line), None)
    return took, answered, out, "".join(line for _, line in err_lines), proc.returncode, parser


@pytest.fixture
def stuck_folder(tmp_path: Path, deskmind_home: Path) -> Path:
    # 1,000 pages of 2,000 lines each: minutes of parsing, within every budget for a while.
    _settings(deskmind_home, max_seconds=3600, max_inflated_mb=100_000, max_pages=10_000, max_text_mb=1000)
    folder = tmp_path / "stuck"
    folder.mkdir()
    (folder / "slow.pdf").write_bytes(own_stream_pdf(pages=1000, lines=2000))
    return folder


def test_ctrl_c_stops_a_stuck_parse_within_a_second(stuck_folder: Path) -> None:
    took, answered, _, err, code, parser = _stop_while_parsing(
        [sys.executable, "-m", "deskmind", "index", str(stuck_folder), "--no-progress"],
        lambda proc: proc.send_signal(signal.SIGINT))
    # The parser is killed and the run says it was cancelled within a second; the process then
    # unloads the embedder and the parsers (~0.3 s, more on a busy machine) before it exits.
    assert answered is not None and answered < 1.0, (answered, err)
    assert took < 5.0, err
    assert code == 130 and "cancelled" in err, err
    assert "Traceback" not in err, err
    assert not parser.is_running() or parser.status() == psutil.STATUS_ZOMBIE


def test_the_trays_stop_ends_a_stuck_parse_within_a_second(stuck_folder: Path, deskmind_home: Path) -> None:
    from deskmind.core.config.paths import Paths

    def press_stop(proc: subprocess.Popen) -> None:  # what ui/indexing.py sends
        proc.stdin.write("cancel\n")
        proc.stdin.flush()

    p = Paths.from_env()
    took, _, out, err, _, parser = _stop_while_parsing(
        [sys.executable, "-m", "deskmind.ui.index_worker", str(p.data_dir), str(p.config_dir),
         str(p.cache_dir), str(stuck_folder)], press_stop)
    assert took < 1.0, err
    summary = json.loads(out.strip().splitlines()[-1])["summary"]
    assert summary["cancelled"] is True and summary["indexed"] == 0
    assert "Traceback" not in err and "slow.pdf" not in err, err  # a stop is not a parser failure
    assert not parser.is_running() or parser.status() == psutil.STATUS_ZOMBIE


def test_a_killed_indexer_leaves_no_parser_behind(stuck_folder: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "deskmind", "index", str(stuck_folder), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        parser = _busy_parser(psutil.Process(proc.pid))
    finally:
        proc.kill()
        proc.wait(timeout=30)
    gone, _ = psutil.wait_procs([parser], timeout=5)
    assert gone, "the parser process outlived the indexer that started it"
