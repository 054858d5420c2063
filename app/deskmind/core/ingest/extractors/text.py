"""Plain text and logs, in whatever encoding they come."""

from __future__ import annotations

import codecs
from pathlib import Path

from deskmind.core.ingest.types import Extracted, ExtractionError, FileTypes, Section, Unsupported

TEXT_SUFFIXES = [".txt", ".text", ".log", ".rst", ".csv", ".tsv", ".org", ".adoc", ".out",
                 ".nfo", ".me", ".1st", ".tex", ".texi", ".srt", ".vtt"]
# Files known by name rather than suffix (READMEs, licences, Debian's doc files).
TEXT_NAMES = ["readme", "license", "licence", "copying", "copyright", "authors", "contributors",
              "changelog", "changes", "news", "history", "todo", "install", "thanks", "notice",
              "credits", "faq", "bugs", "maintainers", "hacking", "makefile", "dockerfile"]

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
         (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
# Control characters that do not occur in real text (tab, newlines, form feed, escape do).
_CONTROL = set(range(0, 32)) - {9, 10, 12, 13, 27}


def decode(data: bytes, path: Path | None = None) -> str:
    """Bytes to text: BOMs honoured, UTF-8 first, then a detected legacy encoding.

    Raises :class:`ExtractionError` for bytes that are not text in any encoding.
    """
    if not data:
        return ""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError as exc:
                raise ExtractionError(f"starts with a {enc} byte-order mark but is not {enc}: {exc}") from exc
    head = data[:8192]
    if b"\x00" in head:
        raise ExtractionError("binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _decode_legacy(data)


def _looks_like_text(text: str) -> bool:
    sample = text[:20000]
    if not sample:
        return True
    bad = sum(1 for ch in sample if ord(ch) in _CONTROL or 0x80 <= ord(ch) < 0xA0)
    return bad / len(sample) < 0.01


def _western(text: str) -> bool:
    """Plausible Western text: accented letters are a minority beside ASCII ones.

    Text of another script read as Windows-1252 is made almost only of accented letters
    ("Ïðèâåò" for Cyrillic), which this rejects.
    """
    letters = ascii_letters = 0
    for ch in text[:20000]:
        if ch.isalpha():
            letters += 1
            ascii_letters += ch < "\x80"
    return letters == 0 or (letters - ascii_letters) / letters < 0.5


def _decode_legacy(data: bytes) -> str:
    # Short Western files (the usual Latin-1 / Windows-1252 case) are too small for statistical
    # detection, which often calls them Central European or even Arabic: try 1252 first.
    try:
        text = data.decode("cp1252")
        if _looks_like_text(text) and _western(text):
            return text
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # charset-normalizer weighs "chaos" (implausible character sequences) per candidate and
    # returns nothing when every candidate reads as noise.
    best = from_bytes(data[: 1 << 20]).best()
    if best is not None and best.encoding:
        try:
            text = data.decode(best.encoding)
            if _looks_like_text(text):
                return text
        except (UnicodeDecodeError, LookupError):
            pass
    raise ExtractionError("bytes that decode in no known text encoding (not text?)")


def extract_text(path: Path, data: bytes) -> Extracted:
    text = decode(data, path).replace("\r\n", "\n").replace("\r", "\n")
    if not _looks_like_text(text):
        raise ExtractionError("binary content (control bytes), not text")
    # The first line with some words in it (not a rule of asterisks or a blank banner).
    first = next((ln.strip() for ln in _head_lines(text, 50) if sum(c.isalpha() for c in ln) >= 3), "")
    title = path.stem if not first or len(first) > 120 else first
    return Extracted(title=title, text=text, sections=[Section(text=text, line_start=1)],
                     extractor="text")


def _head_lines(text: str, n: int) -> list[str]:
    """The first ``n`` lines, without splitting the whole text (a 16 MB log has a million)."""
    end = -1
    for _ in range(n):
        end = text.find("\n", end + 1)
        if end < 0:
            end = len(text)
            break
    return text[:end + 1].splitlines()[:n]


def extract_unknown(path: Path, data: bytes) -> Extracted:
    """A file with no extension (notes, "profile", "POSIX-MANPAGES") or with one no extractor
    claims (a .perl script, a .netrc): text if it reads as text, otherwise skipped as an
    unsupported type rather than reported as a failure."""
    try:
        return extract_text(path, data)
    except ExtractionError as exc:
        what = path.suffix or "no extension"
        raise Unsupported(f"unsupported file type ({what}, and not text: {exc})") from exc


def register_types(types: FileTypes) -> None:
    types.register(TEXT_SUFFIXES + TEXT_NAMES, "text", extract_text)
    types.register([""], "text", extract_unknown)
