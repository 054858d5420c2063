"""What an extractor returns, and the registry that picks one per file type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class ExtractionError(Exception):
    """A file could not be read as its type; the message says why (shown to people)."""


class Unsupported(ExtractionError):
    """No extractor handles this file (binary, unknown type)."""


@dataclass
class Section:
    """A piece of a document with its place: heading path, page, symbol, time range..."""

    text: str
    locator: dict[str, Any] = field(default_factory=dict)
    # 1-based line in the file where ``text`` starts, when lines mean something.
    line_start: int | None = None


@dataclass
class Link:
    target: str
    kind: str = "link"  # link, wikilink, embed
    text: str | None = None


@dataclass
class Extracted:
    title: str | None
    text: str
    sections: list[Section]
    extractor: str
    metadata: dict[str, Any] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    # Set by extractors whose sections are already chunk-sized (code symbols, transcript turns).
    presplit: bool = False


Extractor = Callable[[Path, bytes], Extracted]


@dataclass(frozen=True)
class FileType:
    kind: str
    extractor: Extractor


_BY_SUFFIX: dict[str, FileType] = {}


def register(suffixes: list[str], kind: str, extractor: Extractor) -> None:
    for s in suffixes:
        _BY_SUFFIX[s.lower()] = FileType(kind, extractor)


def file_type(path: Path) -> FileType | None:
    from deskmind.core.ingest import extractors  # noqa: F401  (registers the built-ins)

    return _BY_SUFFIX.get(path.suffix.lower()) or _BY_SUFFIX.get(path.name.lower())
