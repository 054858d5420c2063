"""Memory while indexing grows with the chunk being embedded, not with the file.

``deskmind index`` runs in a subprocess on large inputs made here (plain text near the text
budget, Markdown, CSV, and a ``.txt.gz`` that inflates past the budget); its peak RSS must stay
within ``HEADROOM_MB`` of the same command's peak on a one-line note (memory and embedder
open, nothing large to index), and the file must be searchable afterwards. A run killed with
SIGKILL mid-file leaves the source absent, and what it had staged is gone after the next open.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.ingest.large_inputs import MARKER, write_large

HEADROOM_MB = 500
DISTINCT = 30  # distinct paragraphs per input: the real embedder embeds each once

# Runs the command given and prints its exit code, output, wall time and peak RSS (its own and
# that of the descendants it waited for; nothing else in this small wrapper inflates it).
_MEASURE = r"""
import json, resource, subprocess, sys, time
t0 = time.monotonic()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"code": r.returncode, "out": r.stdout, "err": r.stderr[-4000:],
                  "seconds": time.monotonic() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

INPUTS = {  # name -> (shape, MB of text)
    "notes.txt": ("text", 15),
    "handbook.md": ("markdown", 8),
    "table.csv": ("csv", 8),
    "server.log.txt.gz": ("text", 40),  # inflates past the 16 MB text budget: cut there
}


def _index_measured(path: Path) -> tuple[dict, dict]:
    cmd = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "deskmind", "index", str(path),
           "--json", "--no-progress", "--no-transcribe"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr
    run = json.loads(res.stdout)
    assert run["code"] == 0, run["err"]
    return run, json.loads(run["out"])


def _idle_peak_mb(tmp_path: Path) -> float:
    note = tmp_path / "idle" / "note.md"
    note.parent.mkdir()
    note.write_text("# Idle\nOne line, so the command opens memory and loads the embedder.\n")
    _index_measured(note)  # the first run prepares the model cache of this data folder
    note.write_text("# Idle\nOne line, so the command opens memory and loads the embedder (again).\n")
    run, summary = _index_measured(note)
    assert summary["indexed"] == 1
    return run["peak_mb"]


def _assert_searchable(core, path: Path) -> None:
    hits = core.searcher().search(MARKER, limit=5).hits
    assert hits, f"nothing found for {MARKER}"
    assert hits[0].source == str(path) and MARKER in hits[0].text, hits[0]


@pytest.mark.timeout(900)  # two cores shared with other work
@pytest.mark.parametrize("name", list(INPUTS))
def test_peak_memory_stays_within_headroom(tmp_path: Path, core, name: str) -> None:
    shape, mb = INPUTS[name]
    path = write_large(tmp_path / name, mb, shape, distinct=DISTINCT)
    idle = _idle_peak_mb(tmp_path)
    run, summary = _index_measured(path)
    over = run["peak_mb"] - idle
    print(f"{name}: {path.stat().st_size / 2**20:.1f} MB on disk, peak {run['peak_mb']:.0f} MB, "
          f"idle {idle:.0f} MB, over idle {over:.0f} MB, {run['seconds']:.0f} s, {os.getloadavg()[0]:.1f} load")
    assert summary["indexed"] == 1, summary
    assert summary["chunks"] > 5000, summary  # large in chunks, not just in bytes
    assert over <= HEADROOM_MB, run
    if name.endswith(".gz"):
        assert summary["partly"][0]["reason"].startswith("kept the first 16 MB of text of 40 MB")
    else:
        _assert_searchable(core, path)
    assert core.store.staging.counts() == (0, 0)


@pytest.mark.timeout(900)
@pytest.mark.usefixtures("on_both_backends")
def test_large_files_on_this_backend(tmp_path: Path, core) -> None:
    """Every input in one run, on SQLite and on PostgreSQL (staged in the database there)."""
    folder = tmp_path / "large"
    folder.mkdir()
    for name, (shape, mb) in INPUTS.items():
        write_large(folder / name, 3, shape, distinct=DISTINCT)  # smaller: the point here is the storing
    (folder / "kingfisher.md").write_text("# Kingfisher\nThe kingfisher dives for minnows at dawn.\n")
    idle = _idle_peak_mb(tmp_path)
    run, summary = _index_measured(folder)
    assert summary["indexed"] == 5 and summary["failed"] == 0, summary
    assert run["peak_mb"] - idle <= HEADROOM_MB, run
    by_name = {Path(s.uri).name: s for s in core.store.list_sources()}
    for name in INPUTS:
        src = by_name[name]
        chunks = core.store.chunks_of(src.id)
        assert src.chunk_count == len(chunks) > 1000
        assert "Paragraph 0." in chunks[0][2], chunks[0]  # in the file's order
    hits = core.searcher().search(MARKER, limit=10).hits
    assert MARKER in hits[0].text
    assert {Path(h.source).name for h in hits if MARKER in h.text} == set(INPUTS)
    hits = core.searcher().search("kingfisher minnows", limit=3).hits
    assert Path(hits[0].source).name == "kingfisher.md"
    # Every chunk has a vector: repeated text took the vector embedded for its first copy.
    stats = core.store.stats()
    assert stats["vector_index"]["vectors"] == stats["chunks"], stats
    assert core.store.staging.counts() == (0, 0)


def _wait_for_staged(core, proc: subprocess.Popen, timeout: float = 300.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        staged = core.store.staging.counts()[1]
        if staged:
            return staged
        time.sleep(0.2)
    raise AssertionError("nothing was staged")


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("on_both_backends")
def test_a_killed_run_leaves_the_source_absent_and_its_staging_is_dropped(tmp_path: Path, core) -> None:
    path = write_large(tmp_path / "journal.txt", 3, "text", distinct=400)
    proc = subprocess.Popen([sys.executable, "-m", "deskmind", "index", str(path), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for_staged(core, proc) > 0
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert core.store.source_id_by_uri(str(path)) is None
    assert core.store.staging.counts()[1] > 0  # left behind by the killed run
    # The next run (here on another file) drops them first.
    other = tmp_path / "other" / "note.md"
    other.parent.mkdir()
    other.write_text("# Heron\nA heron waits in the shallows.\n")
    res = subprocess.run([sys.executable, "-m", "deskmind", "index", str(other), "--json", "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert core.store.staging.counts() == (0, 0)
    assert core.store.source_id_by_uri(str(path)) is None
    assert core.searcher().search("heron shallows", limit=1).hits[0].source == str(other)


def test_chunking_holds_one_chunk_not_the_text() -> None:
    """iter_chunks keeps no list of paragraphs, sentences or words: beside the text, what it
    allocates while walking 3 MB is about one chunk (the list-based chunker took several MB)."""
    import tracemalloc

    from deskmind.core.ingest.chunker import MAX_CHUNK_CHARS, iter_chunks
    from deskmind.core.ingest.types import Section

    one_paragraph = " ".join(f"w{i % 997}" for i in range(300_000))  # no blank line, no full stop
    blob = "x" * (1024 * 1024)  # no space at all
    text = "First part.\n\n" + one_paragraph + "\n\n" + blob + "\n\nLast words here."
    tracemalloc.start()
    try:
        longest = count = 0
        for ch in iter_chunks([Section(text=text, line_start=1)]):
            longest = max(longest, len(ch.text))
            count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert longest <= MAX_CHUNK_CHARS
    assert count > (300_000 // 180) + (1024 * 1024 // MAX_CHUNK_CHARS)
    assert peak < 256 * 1024, peak
