"""Bad input: each file is reported with a specific reason, the rest of the batch is indexed,
nothing already stored is lost, and nothing crashes."""

from __future__ import annotations

import io
import os
import random
import time
import zipfile
from pathlib import Path

import pytest

from deskmind.core.ingest.indexer import Indexer
from deskmind.core.ingest.types import Extracted, Section
from deskmind.core.memory.store import MemoryStore
from tests.core.ingest.conftest import chunks_of, index_without_read_rights, make_docx, make_pdf, source_row


def _good(tmp_path: Path) -> Path:
    g = tmp_path / "good.md"
    g.write_text("# Good\nThis file is fine and must be indexed whatever its neighbours do.\n")
    return g


def _reason(summary, path: Path) -> tuple[str, str]:
    o = summary.outcome(path)
    assert o is not None, f"no outcome for {path}"
    return o.status, o.reason or ""


def test_pdf_corrupt_truncated_encrypted_and_textless(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    from pypdf import PdfReader, PdfWriter

    good_pdf = make_pdf(["Page one about otters.", "Page two about beavers."])
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.4\n" + bytes(random.Random(1).randrange(256) for _ in range(3000)))
    (tmp_path / "truncated.pdf").write_bytes(good_pdf[: len(good_pdf) // 2])
    w = PdfWriter()
    w.append(PdfReader(io.BytesIO(good_pdf)))
    w.encrypt(user_password="hunter2", owner_password="owner", algorithm="AES-256")
    buf = io.BytesIO()
    w.write(buf)
    (tmp_path / "encrypted.pdf").write_bytes(buf.getvalue())
    (tmp_path / "scan.pdf").write_bytes(make_pdf(["", ""]))
    (tmp_path / "fake.pdf").write_bytes(b"this is not a pdf at all")
    good = _good(tmp_path)
    s = indexer.index([tmp_path])
    assert _reason(s, tmp_path / "corrupt.pdf")[0] == "failed"
    assert "corrupt" in _reason(s, tmp_path / "corrupt.pdf")[1]
    st, why = _reason(s, tmp_path / "truncated.pdf")
    assert st == "failed" and "corrupt or truncated PDF" in why
    assert _reason(s, tmp_path / "encrypted.pdf") == ("failed", "encrypted PDF: a password is needed to read it")
    st, why = _reason(s, tmp_path / "scan.pdf")
    assert st == "failed" and why.startswith("PDF has no extractable text (2 pages")
    assert _reason(s, tmp_path / "fake.pdf") == ("failed", "not a PDF (no %PDF header)")
    assert source_row(store, good)["status"] == "indexed"
    assert source_row(store, tmp_path / "scan.pdf")["error"].startswith("PDF has no extractable text")


def test_zero_byte_binary_and_undecodable(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    rnd = random.Random(0)
    (tmp_path / "noise.txt").write_bytes(bytes(rnd.randrange(1, 256) for _ in range(4000)))
    good = _good(tmp_path)
    s = indexer.index([tmp_path])
    assert _reason(s, tmp_path / "empty.txt") == ("skipped", "empty file (zero bytes)")
    assert _reason(s, tmp_path / "image.txt") == ("failed", "binary content (NUL bytes), not text")
    assert _reason(s, tmp_path / "noise.txt") == ("failed", "bytes that decode in no known text encoding (not text?)")
    assert source_row(store, good)["status"] == "indexed"
    assert source_row(store, tmp_path / "noise.txt")["status"] == "failed"


def test_two_gigabyte_file_is_skipped_without_reading(tmp_path: Path, store: MemoryStore) -> None:
    huge = tmp_path / "huge.log"
    with open(huge, "wb") as fh:
        fh.truncate(2 * 1024 ** 3)  # sparse: no disk used, but 2 GB to anyone who reads it
    good = _good(tmp_path)
    indexer = Indexer(store, None, max_file_bytes=50 * 1024 * 1024)
    t0 = time.perf_counter()
    s = indexer.index([tmp_path])
    assert time.perf_counter() - t0 < 5  # reading 2 GB of zeros would take far longer
    st, why = _reason(s, huge)
    assert st == "skipped" and why.startswith("too large: 2048 MB, over the 50 MB limit (settings: [ingest] max_file_mb)")
    assert source_row(store, good)["status"] == "indexed"
    # Re-scan: the skip is remembered, the file is not looked at again.
    s2 = indexer.index([tmp_path])
    assert _reason(s2, huge)[0] == "unchanged"
    # A raised cap reconsiders files skipped for their size.
    big = tmp_path / "big.txt"
    big.write_text("many words here " * 150_000)  # 2.4 MB
    assert _reason(Indexer(store, None, max_file_bytes=1024 ** 2).index([big]), big)[0] == "skipped"
    assert _reason(Indexer(store, None, max_file_bytes=4 * 1024 ** 2).index([big]), big)[0] == "indexed"


def test_zip_bomb_disguised_as_docx_is_refused_before_parsing(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=True) as fh:
            block = b"\0" * (1 << 20)
            for _ in range(64):  # 64 MB of zeros -> ~64 kB compressed
                fh.write(block)
    (tmp_path / "invoice.docx").write_bytes(bomb.getvalue())
    assert (tmp_path / "invoice.docx").stat().st_size < 200_000
    (tmp_path / "notzip.docx").write_bytes(b"PK\x03\x04 definitely not a zip")
    (tmp_path / "real.docx").write_bytes(make_docx([(None, "A genuine document about kayaks.")]))
    s = indexer.index([tmp_path])
    st, why = _reason(s, tmp_path / "invoice.docx")
    assert st == "failed" and why.startswith("refused: part word/document.xml of this DOCX inflates") and "zip bomb" in why
    st, why = _reason(s, tmp_path / "notzip.docx")
    assert st == "failed" and why.startswith("not a valid DOCX (broken zip container)")
    assert "kayaks" in chunks_of(store, tmp_path / "real.docx")[0][0]


def test_file_deleted_before_read_and_changed_while_read(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    # A real race, made deterministic: the file goes away between the scan and the read.
    doomed = tmp_path / "doomed.txt"
    doomed.write_text("here for a moment")
    good = _good(tmp_path)

    def on_event(ev) -> None:
        if ev.kind == "scan":
            doomed.unlink()

    s = indexer.index([tmp_path], on_event=on_event)
    assert _reason(s, doomed) == ("failed", "file vanished before it could be read")
    assert source_row(store, good)["status"] == "indexed"

    # A file written to while its extractor runs (an extractor for a test-only type that
    # appends to the file, as a program saving it at that moment would).
    def appending_extractor(path: Path, data: bytes) -> Extracted:
        with open(path, "ab") as fh:
            fh.write(b" and more written meanwhile")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
        return Extracted(title="x", text=data.decode(), sections=[Section(data.decode())], extractor="t")

    indexer.file_types.register([".racy"], "text", appending_extractor)
    racy = tmp_path / "busy.racy"
    racy.write_text("original words")
    s = indexer.index([tmp_path])
    assert _reason(s, racy) == ("failed", "changed while being read; will retry on next scan")
    assert source_row(store, racy)["status"] == "failed"
    # Retried on the next scan (the failure is transient) even though nothing changed since.
    indexer.file_types.register([".racy"], "text", lambda p, d: Extracted("x", d.decode(), [Section(d.decode())], "t"))
    s = indexer.index([tmp_path])
    assert _reason(s, racy)[0] == "indexed"


def test_a_damaged_rewrite_keeps_the_last_good_text(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    """A PDF or DOCX broken or cut off (a copy or download under way?) keeps its last good text
    and says why it was not re-read; content that is simply not text (binary, empty) does not:
    tests/core/ingest/test_stale_content.py."""
    f = tmp_path / "notes.pdf"
    f.write_bytes(make_pdf(["Important otter facts to keep."]))
    indexer.index([f])
    before = chunks_of(store, f)
    assert "otter" in before[0][0]
    f.write_bytes(make_pdf(["Important otter facts to keep."])[:-200])   # cut off
    s = indexer.index([f])
    assert _reason(s, f)[0] == "failed"
    row = source_row(store, f)
    assert row["status"] == "indexed" and row["error"].startswith("failed: corrupt or truncated PDF")
    assert chunks_of(store, f) == before
    f.write_bytes(make_pdf(["Otters hold hands while they sleep."]))         # whole again
    indexer.index([f])
    assert "hold hands" in chunks_of(store, f)[0][0] and source_row(store, f)["error"] is None


def test_symlink_loop_fifo_and_unusual_names(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "loop").symlink_to(tmp_path)            # sub/loop -> .. -> sub/loop ...
    (tmp_path / "self").symlink_to(tmp_path / "self")           # a link to itself
    (tmp_path / "zz-alias").symlink_to(tmp_path / "spaced out")    # a second way into a folder
    os.mkfifo(tmp_path / "pipe.txt")                            # would block a naive reader
    odd = tmp_path / "spaced out" / "naïve ☃ notes\nsecond line.md"
    odd.parent.mkdir()
    odd.write_text("# Snowman\nunusual names are fine\n")
    good = _good(tmp_path)
    s = indexer.index([tmp_path])
    assert _reason(s, tmp_path / "sub" / "loop") == ("skipped", "symlink loop: the link leads back into a folder above it")
    assert _reason(s, tmp_path / "self") == ("skipped", "symlink loop: the link leads back to itself")
    assert _reason(s, tmp_path / "pipe.txt") == ("skipped", "not a regular file: a FIFO (named pipe)")
    assert _reason(s, tmp_path / "zz-alias") == (
        "skipped", f"same folder as {tmp_path / 'spaced out'} (a symbolic link): indexed once")
    assert source_row(store, odd)["status"] == "indexed"
    assert chunks_of(store, odd)[0][1]["heading"] == ["Snowman"]
    assert source_row(store, good)["status"] == "indexed"
    # Named explicitly, the FIFO is still not opened.
    s = indexer.index([tmp_path / "pipe.txt"])
    assert _reason(s, tmp_path / "pipe.txt")[0] == "skipped"


def test_permission_denied(tmp_path: Path) -> None:
    """Root reads everything, so as root the indexer runs in a child process whose bounding
    set lacks CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv): file modes then bind root as
    they bind anyone. As a normal user the child simply runs as that user."""
    import shutil

    tree = tmp_path / "tree"
    (tree / "locked").mkdir(parents=True)
    (tree / "locked" / "inside.txt").write_text("hidden")
    (tree / "secret.txt").write_text("not for you")
    (tree / "open.txt").write_text("anyone may read this")
    os.chmod(tree / "secret.txt", 0o000)
    os.chmod(tree / "locked", 0o000)
    outcomes = index_without_read_rights(
        tmp_path / "memory.db", tree,
        restore=lambda: (os.chmod(tree / "secret.txt", 0o600), os.chmod(tree / "locked", 0o700)))
    assert outcomes[str(tree / "secret.txt")] == ("failed", "permission denied")
    assert outcomes[str(tree / "locked")] == ("failed", "permission denied: cannot list folder")
    assert outcomes[str(tree / "open.txt")][0] == "indexed"


def test_a_parser_crash_is_contained(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    def exploding(path: Path, data: bytes) -> Extracted:
        raise RuntimeError("parser bug")

    indexer.file_types.register([".boom"], "text", exploding)
    (tmp_path / "a.boom").write_text("x")
    good = _good(tmp_path)
    s = indexer.index([tmp_path])
    assert _reason(s, tmp_path / "a.boom") == ("failed", "could not parse: RuntimeError: parser bug")
    assert source_row(store, good)["status"] == "indexed"
