"""How a file's path is kept as a source's uri, found again, and shown.

File names on Linux are bytes. Python holds the bytes of a name that are not UTF-8 as lone
surrogates (PEP 383, "surrogateescape"), which no database text column can store. So:

- a path that is valid UTF-8 is kept as itself (``/home/ann/notes.md``), as always;
- any other path is kept as a ``file://`` URI (RFC 8089) whose percent-escapes are its exact
  bytes (``file:///home/ann/caf%E9.md``): valid UTF-8 (ASCII, in fact) and lossless.

A bare path always starts with ``/``, so the two forms cannot be confused. Percent-escaping is
done byte by byte, so the escaped form of a folder is a prefix of the escaped form of every
file under it: "everything under this folder" is one prefix per form (:func:`prefixes`).
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath
from urllib.parse import quote, unquote_to_bytes, urlsplit

FILE_SCHEME = "file://"
REPLACEMENT = "\ufffd"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_UNDECODABLE_RUN = re.compile("[\udc80-\udcff]+")  # bytes 0x80-0xff held by surrogateescape


def not_utf8(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (as lone surrogates)."""
    return _LONE_SURROGATE.search(text) is not None


def path_uri(path: str | bytes | PurePath) -> str:
    """The uri a file at ``path`` is kept under."""
    text = os.fsdecode(path)
    if not not_utf8(text):
        return text
    return FILE_SCHEME + quote(os.fsencode(text), safe="/")


def uri_path(uri: str) -> str | None:
    """The local path (as Python's ``os`` functions take it) a uri names, or None when it
    names no local file (a URL, a made-up uri of a derived source)."""
    if uri.startswith(FILE_SCHEME):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            return None
        return os.fsdecode(unquote_to_bytes(parts.path))
    if uri.startswith("/"):
        return uri
    return None


def replace_undecodable(text: str) -> str:
    """``text`` with U+FFFD where its bytes were not UTF-8 (as Python's UTF-8 decoder
    replaces them: one per broken sequence), e.g. a title made from a file name."""
    if not not_utf8(text):
        return text
    return _LONE_SURROGATE.sub(_replace_run, _UNDECODABLE_RUN.sub(_decode_run, text))


def _decode_run(m: re.Match[str]) -> str:
    return m.group().encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _replace_run(m: re.Match[str]) -> str:
    return REPLACEMENT * len(m.group())


def shown(text: str) -> str:
    """A path or uri for people: a local file's path, with U+FFFD where a byte of its name
    is not UTF-8; any other text as it is (lone surrogates replaced)."""
    if text.startswith(FILE_SCHEME):
        path = uri_path(text)
        if path is not None:
            text = path
    return replace_undecodable(text)


def prefixes(folder: str | PurePath) -> list[tuple[str, str]]:
    """``(uri of the folder, prefix of the uris under it)`` in each form a file under
    ``folder`` may be kept in: as a bare path (when the folder's name is UTF-8) and as a
    ``file://`` URI (for files whose names are not)."""
    text = os.fsdecode(folder)
    base = text.rstrip("/") or "/"
    out: list[tuple[str, str]] = []
    if not not_utf8(base):
        out.append((base, base + "/" if base != "/" else "/"))
    escaped = FILE_SCHEME + quote(os.fsencode(base), safe="/")
    out.append((escaped, escaped.rstrip("/") + "/"))
    return out
