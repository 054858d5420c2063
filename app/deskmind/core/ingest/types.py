"""What an extractor returns, and the registry that picks one per file type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class ExtractionError(Exception):
    """A file could not be read as its type; the message says why (shown to people)."""


class DamagedFile(ExtractionError):
    """The file is a broken or cut-off instance of its type (a truncated PDF, a zip missing its
    end): often a copy or download still under way. A file indexed before keeps its last good
    text until it reads again, unlike content that is simply not text."""


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
    # What a budget left out ("kept the first 3,000 pages of 4,000 ..."), for the outcome.
    left_out: list[str] = field(default_factory=list)


Extractor = Callable[[Path, bytes], Extracted]


@dataclass(frozen=True)
class FileType:
    kind: str
    extractor: Extractor | None
    # Media is not read by the indexer: it is queued for (or handed to) the transcriber.
    media: bool = False
    # Parsed in a parser process (core.ingest.workers) whose memory and time are bounded from
    # outside: parsers that can go quadratic or allocate without limit on hostile input.
    isolate: bool = False


class FileTypes:
    """File types by suffix (".md") or whole file name ("readme"); "" is the fallback for
    names no type claims. The composition root fills one with the built-in extractors
    (:func:`deskmind.core.ingest.extractors.builtin_file_types`) and hands it to the indexer;
    each extractor module adds its own types with ``register_types(types)``."""

    def __init__(self) -> None:
        self._by_suffix: dict[str, FileType] = {}
        self._by_name: dict[str, FileType] = {}
        self._gz: dict[str, FileType] = {}
        # How "name.ext.gz" is read: the inner type's extractor wrapped by this (see
        # extractors.gzipped); without it, gzipped files are not claimed.
        self._gunzip: Callable[[str, Extractor], Extractor] | None = None

    def register(self, suffixes: list[str], kind: str, extractor: Extractor | None, *,
                 media: bool = False, isolate: bool = False) -> None:
        for s in suffixes:
            target = self._by_suffix if s.startswith(".") else self._by_name
            target[s.lower()] = FileType(kind, extractor, media, isolate)
        self._gz.clear()

    def lookup(self, path: Path | str) -> FileType | None:
        name = path.name if isinstance(path, Path) else str(path).rsplit("/", 1)[-1]
        low = name.lower()
        if low.endswith(".gz") and len(low) > 3:
            return self._gzipped(name[:-3])
        dot = low.rfind(".")
        if dot > 0:
            ft = self._by_suffix.get(low[dot:])
            if ft is not None:
                return ft
        ft = self._by_name.get(low)
        if ft is None and dot > 0:
            # README.Debian, changelog.Debian.amd64, LICENSE.md-like names
            ft = self._by_name.get(low[:dot]) or self._by_name.get(low.split(".", 1)[0])
        if ft is None:
            # No extension, or one no extractor claims (.perl, .cocci, .netrc): read as text
            # when the bytes are text (see extractors.text); known binary suffixes never get
            # here, the default ignore rules pass them over.
            ft = self._by_name.get("")
        return ft

    def read_gzipped_with(self, wrap: Callable[[str, Extractor], Extractor]) -> None:
        self._gunzip = wrap
        self._gz.clear()

    def suffixes(self) -> dict[str, str]:
        """Each registered suffix and its kind."""
        return {s: ft.kind for s, ft in sorted(self._by_suffix.items())}

    def _gzipped(self, inner_name: str) -> FileType | None:
        """README.gz, changelog.Debian.gz, notes.md.gz: the inner file's type, read through gzip."""
        inner = self.lookup(inner_name)
        if inner is None or inner.extractor is None or inner.media or self._gunzip is None:
            return None
        ft = self._gz.get(inner_name.lower())
        if ft is None:
            # Inflating is bounded by the budget as it goes, but what is inflated may be anything.
            ft = FileType(inner.kind, self._gunzip(inner_name, inner.extractor), isolate=True)
            self._gz[inner_name.lower()] = ft
        return ft
