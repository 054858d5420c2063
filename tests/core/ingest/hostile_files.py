"""Hostile files, made on the spot (never committed): each is small on disk and costly to read
naively. Sizes are parameters so tests can scale them to run in seconds."""

from __future__ import annotations

import gzip
import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


# 500 lines (27 kB): a repeat falls inside deflate's 32 kB window, so gzip shrinks it ~1000x.
_LOG_BLOCK = "".join(f"{i:05d} the heron waits by the weir for the tide to turn\n" for i in range(500)).encode()


def _write_log_lines(fh, mb: float) -> None:
    left = int(mb * 1024 * 1024)
    while left > 0:
        fh.write(_LOG_BLOCK[:left])
        left -= len(_LOG_BLOCK)


def gzip_of_text(path: Path, inflated_mb: float) -> Path:
    """A .txt.gz of ordinary log lines that inflates to ``inflated_mb`` MB (~300x smaller)."""
    with gzip.open(path, "wb", compresslevel=9) as fh:
        _write_log_lines(fh, inflated_mb)
    return path


def big_text(path: Path, mb: float) -> Path:
    """A plain text file of ``mb`` MB of log lines, written as it is made."""
    with open(path, "wb") as fh:
        _write_log_lines(fh, mb)
    return path


def shared_stream_pdf(pages: int, lines: int) -> bytes:
    """A PDF of ``pages`` pages that all draw one content stream of ``lines`` lines of text."""
    return _text_pdf(pages, lines, shared=True)


def own_stream_pdf(pages: int, lines: int) -> bytes:
    """A PDF of ``pages`` pages, each drawing a content stream of its own of ``lines`` lines
    (so no page's text is another's: each must be parsed)."""
    return _text_pdf(pages, lines, shared=False)


def _text_pdf(pages: int, lines: int, shared: bool) -> bytes:
    def stream(page: int) -> bytes:
        text = " ".join(f"(line {i} of page {page} about otters) Tj 0 -12 Td" for i in range(lines))
        data = zlib.compress(f"BT /F1 10 Tf 20 800 Td {text} ET".encode(), 9)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"

    first_page = 4
    kids = " ".join(f"{first_page + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Count {pages} /Kids [{kids}] >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    first_stream = first_page + pages
    for i in range(pages):
        contents = first_stream if shared else first_stream + i
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 800] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % contents)
    objects += [stream(1)] if shared else [stream(i + 1) for i in range(pages)]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def nested_divs(n: int) -> bytes:
    """``n`` nested ``<div>``s, each with a word: quadratic for HTML5 tree builders."""
    return (b"<html><head><title>Deep</title></head><body>" + b"<div>x" * n + b"</div>" * n
            + b"<p>the last paragraph</p></body></html>")


def _docx_with(document_xml_chunks, *, force_zip64: bool = True, to=None) -> bytes | None:
    """A DOCX holding the chunks as word/document.xml: its bytes, or written to the file
    ``to`` as the chunks come (a document.xml of hundreds of MB never sits in memory)."""
    buf = io.BytesIO() if to is None else open(to, "wb")
    with buf, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=force_zip64) as fh:
            for chunk in document_xml_chunks:
                fh.write(chunk)
        if to is not None:
            return None
        zf.close()
        return buf.getvalue()


def big_docx(document_mb: float, words_every: int = 50, to: Path | None = None) -> bytes | None:
    """A DOCX whose document.xml is ``document_mb`` MB of run markup with a word now and then
    (compresses ~60x, under the zip-bomb ratio check); written to ``to`` when given. The run
    markup comes from a pool of 64 paragraphs (rsids from four values, as a document edited
    in a few sessions has), so hundreds of MB are made in seconds."""
    rnd = random.Random(7)
    head = f'<w:document xmlns:w="{W_NS}"><w:body>'.encode()
    pool = ["<w:p>" + "".join(f'<w:r w:rsidR="{rnd.getrandbits(2):08X}"><w:rPr><w:b/></w:rPr></w:r>'
                              for _ in range(words_every))
            for _ in range(64)]

    def chunks():
        yield head
        left = int(document_mb * 1024 * 1024)
        n = 0
        while left > 0:
            batch = "".join(f"{pool[(n + i) % 64]}<w:r><w:t>word{n + i} </w:t></w:r></w:p>"
                            for i in range(256)).encode()
            n += 256
            left -= len(batch)
            yield batch
        yield b"</w:body></w:document>"

    return _docx_with(chunks(), to=to)


def understated_docx(real_mb: float = 8) -> bytes:
    """A DOCX whose zip headers say document.xml is 1 kB when it inflates to ``real_mb`` MB
    (up to 2 GiB: the markup is deflated as it is made, never held whole)."""
    para = b"<w:p><w:r><w:t>the tide turns twice a day at the weir</w:t></w:r></w:p>"
    head = f'<w:document xmlns:w="{W_NS}"><w:body>'.encode()
    tail = b"</w:body></w:document>"
    n = int(real_mb * 1024 * 1024) // len(para)
    block = para * 4096

    def chunks():
        yield head
        left = n
        while left > 0:
            yield block[: min(left, 4096) * len(para)]
            left -= 4096
        yield tail

    size = len(head) + n * len(para) + len(tail)
    assert size < 2**31, "without zip64 a part holds less than 2 GiB"
    data = bytearray(_docx_with(chunks(), force_zip64=False))
    real = struct.pack("<I", size)
    at, i = [], data.find(real)
    while i >= 0:
        at.append(i)
        i = data.find(real, i + 1)
    assert len(at) == 2, "the size should appear once in the local header and once in the directory"
    for i in at:
        data[i:i + 4] = struct.pack("<I", 1024)
    return bytes(data)
