"""File names are bytes on Linux: a file whose name is not valid UTF-8 is indexed, kept under a
uri that gives its exact bytes back, shown with U+FFFD, found and opened by its own path, and
every JSON output stays valid UTF-8. The files are real, made with the bytes of their names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deskmind.core.ingest.indexer import Indexer
from deskmind.core.memory import uris
from deskmind.core.memory.store import MemoryStore
from tests.core.ingest.conftest import source_row

LATIN1_NAME = b"caf\xe9 menu.md"            # a name written on a Latin-1 system
BROKEN_NAME = b"notes-\xff\xfe%41.txt"     # bytes no encoding makes sense of, and a literal '%41'
LATIN1_DIR = b"r\xe9sum\xe9s"


def _make(folder: Path) -> dict[bytes, bytes]:
    """Files under names that are not UTF-8 (one in a folder whose name is not either)."""
    base = os.fsencode(folder)
    os.makedirs(base + b"/" + LATIN1_DIR)
    files = {
        base + b"/" + LATIN1_NAME: b"# Menu\nThe espresso machine hums at noon.\n",
        # A first line too long for a title: the title is made from the name.
        base + b"/" + BROKEN_NAME: b"the lighthouse keeper logs every storm, " * 4 + b"\n",
        base + b"/" + LATIN1_DIR + b"/cv.md": b"# CV\nTwenty years of cartography.\n",
        base + b"/plain.md": b"# Plain\nAn ordinary note.\n",
    }
    for name, data in files.items():
        with open(name, "wb") as fh:
            fh.write(data)
    return files


def test_uris_keep_the_exact_bytes_and_show_replacement_characters() -> None:
    for raw in (b"/tmp/caf\xe9.md", b"/tmp/\xff\xfe%41 x.txt", b"/d\xe9j\xe0/%E9.md", b"/a/b.md",
                b"/tmp/\xe2\x82.md", "/tmp/ünïcode ok.md".encode()):
        path = os.fsdecode(raw)
        uri = uris.path_uri(path)
        uri.encode("utf-8")  # storable as text: no lone surrogates
        assert os.fsencode(uris.uri_path(uri)) == raw
        assert uris.path_uri(raw) == uri  # bytes and str spell the same file
        if raw.decode("utf-8", "replace") == raw.decode("utf-8", "surrogateescape"):
            assert uri == path  # a UTF-8 path is kept as it always was
        else:
            assert uri.startswith("file:///")
            assert uris.shown(uri) == raw.decode("utf-8", "replace")
    # '%' in a UTF-8 name is not an escape: the bare path is kept and read back as it is.
    assert uris.uri_path("/tmp/100%25.md") == "/tmp/100%25.md"
    # A folder's escaped form is a prefix of its files' escaped forms.
    folder = os.fsdecode(b"/home/ann/r\xe9sum\xe9s")
    inner = uris.path_uri(folder + os.fsdecode(b"/caf\xe9.md"))
    assert any(inner.startswith(prefix) for _base, prefix in uris.prefixes(folder))
    assert uris.uri_path("https://example.org/a") is None
    assert uris.uri_path("file://otherhost/a") is None


@pytest.mark.usefixtures("on_both_backends")
def test_files_with_names_not_utf8_are_indexed_found_and_forgotten(tmp_path: Path, store: MemoryStore) -> None:
    folder = tmp_path.resolve() / "inbox"
    files = _make(folder)
    s = Indexer(store, None).index([folder])
    by_path = {os.fsencode(o.path): o for o in s.outcomes}
    assert {p: o.status for p, o in by_path.items()} == {p: "indexed" for p in files}

    for raw, data in files.items():
        path = os.fsdecode(raw)
        row = source_row(store, uris.path_uri(path))
        assert row is not None and row["status"] == "indexed"
        # The stored uri opens the very file: its bytes, not a look-alike.
        with open(uris.uri_path(uris.path_uri(path)), "rb") as fh:
            assert fh.read() == data
        # Its own path (as the command line passes it) finds it.
        assert store.resolve(path) == [row["id"]]
    assert "\ufffd" in source_row(store, uris.path_uri(os.fsdecode(os.fsencode(folder) + b"/" + BROKEN_NAME)))["title"]
    # The folder whose name is not UTF-8 resolves to what is under it.
    assert len(store.resolve(os.fsdecode(os.fsencode(folder) + b"/" + LATIN1_DIR))) == 1
    # The whole folder resolves to all four, in both uri forms.
    assert len(store.resolve(str(folder))) == 4

    again = Indexer(store, None).index([folder])
    assert sorted(o.status for o in again.outcomes) == ["unchanged"] * 4

    gone = os.fsencode(folder) + b"/" + LATIN1_NAME
    os.remove(gone)
    after = Indexer(store, None).index([folder])
    removed = [o for o in after.outcomes if o.status == "removed"]
    assert [(os.fsencode(o.path), o.reason) for o in removed] == [(gone, "file no longer exists")]
    assert source_row(store, uris.path_uri(os.fsdecode(gone))) is None


def _deskmind(*args: str | bytes, home: Path) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, DESKMIND_HOME=str(home), LANG="C.UTF-8", LC_ALL="C.UTF-8")
    return subprocess.run([sys.executable, "-m", "deskmind", *args], capture_output=True,
                          env=env, timeout=300)


def test_the_command_line_indexes_shows_and_forgets_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = tmp_path / "inbox"
    files = _make(folder)

    run = _deskmind("index", str(folder), "--json", "--no-progress", "--no-transcribe", home=home)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.decode("utf-8"))  # strict: any byte that is not UTF-8 fails
    assert summary["indexed"] == 4 and summary["problems"] == [] and summary["failed"] == 0

    run = _deskmind("sources", "--json", home=home)
    assert run.returncode == 0, run.stderr
    listed = {os.fsencode(uris.uri_path(s["uri"])): s for s in json.loads(run.stdout.decode("utf-8"))}
    assert set(listed) == set(files)  # lossless: each uri gives the exact name back

    run = _deskmind("sources", home=home)
    text = run.stdout.decode("utf-8")
    assert f"{folder}/caf\ufffd menu.md" in text
    assert f"{folder}/r\ufffdsum\ufffds/cv.md" in text

    run = _deskmind("search", "lighthouse storm", "--limit", "1", home=home)
    assert run.returncode == 0, run.stderr
    assert f"{folder}/notes-\ufffd\ufffd%41.txt" in run.stdout.decode("utf-8")
    run = _deskmind("search", "lighthouse storm", "--limit", "1", "--json", home=home)
    hit = json.loads(run.stdout.decode("utf-8"))[0]
    assert os.fsencode(uris.uri_path(hit["source"])) == os.fsencode(folder) + b"/" + BROKEN_NAME

    # The path as bytes on the command line names the source.
    name = os.fsencode(folder) + b"/" + LATIN1_NAME
    run = _deskmind("forget", name, home=home)
    assert run.returncode == 0, run.stderr
    assert "caf\ufffd menu.md" in run.stdout.decode("utf-8")
    run = _deskmind("sources", "--json", home=home)
    assert len(json.loads(run.stdout.decode("utf-8"))) == 3


def test_the_browser_opens_the_original_by_its_bytes(tmp_path: Path) -> None:
    from deskmind.ui.browser.place import desktop_opener, original_file
    from deskmind.ui.browser.provenance import file_path

    raw = os.fsencode(tmp_path) + b"/" + LATIN1_NAME
    with open(raw, "wb") as fh:
        fh.write(b"# Menu\n")
    uri = uris.path_uri(os.fsdecode(raw))
    original = original_file(uri, "markdown", {})
    assert original is not None and os.fsencode(original) == raw
    assert os.fsencode(file_path(uri)) == raw
    command = desktop_opener(original)
    if sys.platform.startswith("linux") and command is not None:
        assert os.fsencode(command[-1]) == raw  # the opener gets the bytes, not U+FFFD
    assert desktop_opener(tmp_path / "plain.md") is None  # Qt opens UTF-8 names itself


def test_the_trays_index_worker_reports_them_in_valid_utf8(tmp_path: Path, deskmind_home: Path) -> None:
    from deskmind.core.config.paths import Paths

    folder = tmp_path / "inbox"
    files = _make(folder)
    p = Paths.from_env()
    # stdin stays open while it works: the worker takes its closing as the app going away.
    proc = subprocess.Popen([sys.executable, "-m", "deskmind.ui.index_worker", str(p.data_dir),
                             str(p.config_dir), str(p.cache_dir), str(folder)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = proc.stdout.read()
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line.decode("utf-8")) for line in out.splitlines()]  # strict UTF-8
    shown = {e["event"]["path"] for e in lines if "event" in e and e["event"].get("path")}
    assert f"{folder}/caf\ufffd menu.md" in shown
    assert not any(uris.not_utf8(s) for s in shown)
    assert lines[-1]["summary"]["indexed"] == len(files)
