"""Plain text and logs, in whatever encoding they come."""

from __future__ import annotations

import codecs
from pathlib import Path

from deskmind.core.ingest.types import ExtractionError, Extracted, Section, register

TEXT_SUFFIXES = [".txt", ".text", ".log", ".rst", ".csv", ".tsv", ".org", ".adoc"]


def decode(data: bytes, path: Path | None = None) -> str:
    """Bytes to text: BOMs honoured, UTF-8 first, then a detected legacy encoding.

    Raises :class:`ExtractionError` for bytes that are not text in any encoding.
    """
    if not data:
        return ""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
                     (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError as exc:
                raise ExtractionError(f"starts with a {enc} byte-order mark but is not {enc}: {exc}") from exc
    if b"\x00" in data[:8192]:
        raise ExtractionError("binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _decode_legacy(data)


def _decode_legacy(data: bytes) -> str:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - charset-normalizer is a dependency
        from_bytes = None
    if from_bytes is not None:
        best = from_bytes(data[: 1 << 20]).best()
        if best is not None and best.encoding:
            try:
                return data.decode(best.encoding)
            except (UnicodeDecodeError, LookupError):
                pass
    # Windows-1252 leaves five bytes undefined; anything else is readable text in it.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise ExtractionError("bytes that decode in no known text encoding") from exc


def extract_text(path: Path, data: bytes) -> Extracted:
    text = decode(data, path).replace("\r\n", "\n").replace("\r", "\n")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    title = path.stem if not first or len(first) > 120 else first
    return Extracted(title=title, text=text, sections=[Section(text=text, line_start=1)],
                     extractor="text")


register(TEXT_SUFFIXES, "text", extract_text)
