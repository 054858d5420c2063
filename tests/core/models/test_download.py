"""Pulling a GGUF from a real loopback HTTP server with Range and ETag, and from a file."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deskmind.core.errors import UserInputError
from deskmind.core.memory.store import MemoryStore
from deskmind.core.models.download import PullCancelled, PullInterrupted, library_dir, pull
from deskmind.core.routing.ledger import EgressLedger
from tests.core.models.test_choice_and_check import write_gguf


class ModelServer:
    """Serves one file with an ETag; honours Range + If-Range; can cut a response short."""

    def __init__(self, data: bytes) -> None:
        self.data, self.etag, self.cut_after = data, '"v1"', None
        self.piece_delay = 0.0  # seconds between 64 KiB pieces: a slow server
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                outer.requests.append(dict(self.headers))
                start = 0
                rng, if_range = self.headers.get("Range"), self.headers.get("If-Range")
                if rng and (if_range is None or if_range == outer.etag):
                    start = int(rng.split("=")[1].rstrip("-"))
                body = outer.data[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(outer.data) - 1}/{len(outer.data)}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", outer.etag)
                self.end_headers()
                if outer.cut_after is not None:
                    self.wfile.write(body[:outer.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    outer.cut_after = None
                    return
                if not outer.piece_delay:
                    self.wfile.write(body)
                    return
                for i in range(0, len(body), 1 << 16):
                    try:
                        self.wfile.write(body[i:i + (1 << 16)])
                    except OSError:  # the client went away (a cancel)
                        return
                    time.sleep(outer.piece_delay)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str = "tiny.gguf") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/org/repo/resolve/main/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def model_bytes(tmp_path: Path) -> bytes:
    return write_gguf(tmp_path / "src" / "tiny.gguf", n=600_000).read_bytes()


@pytest.fixture
def server(model_bytes: bytes):
    srv = ModelServer(model_bytes)
    yield srv
    srv.close()


def test_download_resumes_after_a_cut_and_is_ledgered(tmp_path, server, model_bytes):
    data_dir = tmp_path / "data"
    ledger = EgressLedger(MemoryStore(tmp_path / "memory.db"))
    server.cut_after = 1_000_000
    with pytest.raises(PullInterrupted, match="pull it again to resume"):
        pull(server.url(), data_dir, ledger=ledger)
    assert not (library_dir(data_dir) / "tiny.gguf").exists()
    assert (library_dir(data_dir) / "tiny.gguf.part").stat().st_size == 1_000_000
    seen = []
    res = pull(server.url(), data_dir, ledger=ledger,
               sha256=hashlib.sha256(model_bytes).hexdigest(),
               progress=lambda done, total: seen.append((done, total)))
    assert server.requests[-1]["Range"] == "bytes=1000000-"
    assert server.requests[-1]["If-Range"] == '"v1"'
    assert res.resumed_from == 1_000_000
    assert res.path.read_bytes() == model_bytes
    assert res.info.architecture == "llama"
    assert seen[-1] == (len(model_bytes), len(model_bytes))
    assert sorted(p.name for p in library_dir(data_dir).iterdir()) == ["tiny.gguf"]
    rows = ledger.entries()
    assert [(r.host, r.provider, r.status) for r in rows] == [
        ("127.0.0.1", "model-download", "interrupted"), ("127.0.0.1", "model-download", "ok")]
    assert rows[0].bytes_in == 1_000_000
    assert rows[1].bytes_in == len(model_bytes) - 1_000_000
    assert all(r.bytes_out == 0 and r.item_ids == [] for r in rows)


def test_a_changed_etag_restarts_from_zero(tmp_path, server, model_bytes):
    server.cut_after = 500_000
    with pytest.raises(PullInterrupted):
        pull(server.url(), tmp_path)
    server.etag = '"v2"'
    res = pull(server.url(), tmp_path)
    assert server.requests[-1]["If-Range"] == '"v1"'
    assert res.resumed_from == 0
    assert res.path.read_bytes() == model_bytes


def test_sha_mismatch_is_refused_and_nothing_stays(tmp_path, server):
    with pytest.raises(UserInputError, match="does not match"):
        pull(server.url(), tmp_path, sha256="0" * 64)
    assert list(library_dir(tmp_path).iterdir()) == []


def test_a_truncated_or_foreign_file_is_refused(tmp_path, server, model_bytes):
    server.data = model_bytes[:-5000]
    with pytest.raises(UserInputError, match="truncated|bad GGUF header"):
        pull(server.url(), tmp_path)
    server.data = b"<html>sign in</html>"
    with pytest.raises(UserInputError, match="not a GGUF"):
        pull(server.url(), tmp_path)
    assert list(library_dir(tmp_path).iterdir()) == []


def test_no_free_space_refuses_before_writing(tmp_path, server, model_bytes):
    Usage = namedtuple("Usage", "total used free")
    with pytest.raises(UserInputError, match="not enough free space"):
        pull(server.url(), tmp_path, disk_usage=lambda p: Usage(10**9, 10**9 - 10**6, 10**6))
    assert list(library_dir(tmp_path).iterdir()) == []


def test_cancel_keeps_the_partial_file_for_a_resume(tmp_path, server, model_bytes):
    cancel = threading.Event()

    def progress(done, total):
        if done >= 1 << 20:
            cancel.set()

    with pytest.raises(PullCancelled, match="cancelled"):
        pull(server.url(), tmp_path, progress=progress, cancel=cancel)
    assert not (library_dir(tmp_path) / "tiny.gguf").exists()
    res = pull(server.url(), tmp_path)
    assert res.resumed_from >= 1 << 20
    assert res.path.read_bytes() == model_bytes


def test_local_file_and_refusals(tmp_path, model_bytes):
    src = tmp_path / "src" / "tiny.gguf"
    res = pull(str(src), tmp_path / "data")
    assert res.path.read_bytes() == model_bytes
    with pytest.raises(UserInputError, match="already in the library"):
        pull(str(src), tmp_path / "data")
    with pytest.raises(UserInputError, match="not a .gguf file name"):
        pull("https://example.invalid/model.bin", tmp_path / "data")
    with pytest.raises(UserInputError, match="only https://"):
        pull("ftp://example.invalid/model.gguf", tmp_path / "data")
