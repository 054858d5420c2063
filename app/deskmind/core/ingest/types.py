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
            # Inflating is bounded by the budget as it goes, but what is inflated may be anything.
            ft = FileType(inner.kind, Gunzip(inner_name, inner.extractor), isolate=True)
            self._gz[inner_name.lower()] = ft
        return ft


class Gunzip:
    """README.gz and the like: inflated in steps, each counted against the file's budget, then
    read as the inner type. Text past the text budget is not kept; inflating goes on (counting
    only, nothing kept) so the outcome can say how much was left out, up to the inflate budget.
    A class rather than a closure so a parser process can be sent it."""

    STEP = 1 << 20

    def __init__(self, inner_name: str, inner: Extractor) -> None:
        self.inner_name, self.inner = inner_name, inner

    def __call__(self, path: Path, data: bytes) -> Extracted:
        import zlib

        from deskmind.core.ingest import budget as budget_mod

        m = budget_mod.meter()
        keep_bytes = m.budget.max_text_chars  # text is at most one character per byte
        kept = bytearray()
        d = zlib.decompressobj(wbits=31)  # gzip header and trailer
        total, rest, over = 0, data, False
        try:
            while rest or not d.eof:
                piece = d.decompress(rest, self.STEP)
                rest = d.unconsumed_tail
                if not piece and not rest:
                    if d.eof:
                        break
                    raise DamagedFile("corrupt gzip file: it ends before its data does (cut off?)")
                total += len(piece)
                if len(kept) < keep_bytes:
                    kept += piece[: keep_bytes - len(kept)]
                if not m.inflate(len(piece)):
                    over = True
                    break
                if d.eof and d.unused_data.startswith(b"\x1f\x8b"):
                    rest, d = d.unused_data, zlib.decompressobj(wbits=31)  # another member
        except zlib.error as exc:
            raise DamagedFile(f"corrupt gzip file: {exc}") from exc
        if over and not kept.strip():
            raise budget_mod.BudgetExceeded(
                f"refused: inflates past {budget_mod.size(m.budget.max_inflated_bytes)} "
                f"({m.inflate_limit()}; a gzip bomb?)")
        if over or total > len(kept):
            del kept[_utf8_whole(kept):]
            b = budget_mod
            if over:
                m.note(f"kept the first {b.size(len(kept))} of text; it inflates past "
                       f"{b.size(m.budget.max_inflated_bytes)}, where reading stopped (inflate budget per "
                       f"file: {b.size(m.budget.max_inflated_bytes)}; text budget per file: "
                       f"{b.size(keep_bytes)}; {b.WHERE})")
            else:
                m.note(f"kept the first {b.size(len(kept))} of text of {b.size(total)} "
                       f"(text budget per file: {b.size(keep_bytes)}; {b.WHERE})")
        ex = self.inner(path.with_name(self.inner_name), bytes(kept))
        ex.extractor = f"gzip+{ex.extractor}"
        return ex


def _utf8_whole(b: bytearray) -> int:
    """Where to cut ``b`` so that it does not end inside a UTF-8 character."""
    p = len(b)
    while p > 0 and len(b) - p < 3 and (b[p - 1] & 0xC0) == 0x80:
        p -= 1
    if p == 0 or b[p - 1] < 0xC0:
        return len(b)  # ASCII last, or not UTF-8 at all: nothing to mend
    lead = b[p - 1]
    need = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return len(b) if len(b) - (p - 1) >= need else p - 1
