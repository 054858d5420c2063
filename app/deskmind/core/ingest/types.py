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


Extractor = Callable[[Path, bytes], Extracted]


@dataclass(frozen=True)
class FileType:
    kind: str
    extractor: Extractor | None
    # Media is not read by the indexer: it is queued for (or handed to) the transcriber.
    media: bool = False


class FileTypes:
    """File types by suffix (".md") or whole file name ("readme"); "" is the fallback for
    names no type claims. The composition root fills one with the built-in extractors
    (:func:`deskmind.core.ingest.extractors.builtin_file_types`) and hands it to the indexer;
    each extractor module adds its own types with ``register_types(types)``."""

    def __init__(self) -> None:
        self._by_suffix: dict[str, FileType] = {}
        self._by_name: dict[str, FileType] = {}
        self._gz: dict[str, FileType] = {}

    def register(self, suffixes: list[str], kind: str, extractor: Extractor | None, *,
                 media: bool = False) -> None:
        for s in suffixes:
            target = self._by_suffix if s.startswith(".") else self._by_name
            target[s.lower()] = FileType(kind, extractor, media)
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

    def suffixes(self) -> dict[str, str]:
        """Each registered suffix and its kind."""
        return {s: ft.kind for s, ft in sorted(self._by_suffix.items())}

    def _gzipped(self, inner_name: str) -> FileType | None:
        """README.gz, changelog.Debian.gz, notes.md.gz: the inner file's type, read through gzip."""
        inner = self.lookup(inner_name)
        if inner is None or inner.extractor is None or inner.media:
            return None
        ft = self._gz.get(inner_name.lower())
        if ft is None:
            ft = FileType(inner.kind, _through_gzip(inner_name, inner.extractor))
            self._gz[inner_name.lower()] = ft
        return ft


MAX_GUNZIPPED = 256 * 1024 * 1024


def _through_gzip(inner_name: str, inner_extract: Extractor) -> Extractor:
    def extract_gz(path: Path, data: bytes) -> Extracted:
        import gzip
        import io
        import zlib

        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                raw = gz.read(MAX_GUNZIPPED + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DamagedFile(f"corrupt gzip file: {exc}") from exc
        if len(raw) > MAX_GUNZIPPED:
            raise ExtractionError(
                f"refused: inflates past {MAX_GUNZIPPED // (1024 * 1024)} MB (a gzip bomb?)")
        ex = inner_extract(path.with_name(inner_name), raw)
        ex.extractor = f"gzip+{ex.extractor}"
        return ex

    return extract_gz
