"""Gzipped files (README.gz, changelog.Debian.gz, notes.md.gz), read as their inner type."""

from __future__ import annotations

import zlib
from pathlib import Path

from deskmind.core.ingest import budget as budget_mod
from deskmind.core.ingest.types import DamagedFile, Extracted, Extractor, FileTypes

class Gunzip:
    """README.gz and the like: inflated in steps, each counted against the file's budget, then
    read as the inner type. Text past the text budget is not kept; inflating goes on (counting
    only, nothing kept) so the outcome can say how much was left out, up to the inflate budget.
    A class rather than a closure so a parser process can be sent it."""

    STEP = 1 << 20

    def __init__(self, inner_name: str, inner: Extractor) -> None:
        self.inner_name, self.inner = inner_name, inner

    def __call__(self, path: Path, data: bytes) -> Extracted:
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
                       f"{b.size(m.budget.max_inflated_bytes)}, where reading stopped "
                       f"({m.budget.limits()[0]}; {m.text_limit()})")
            else:
                m.note(f"kept the first {b.size(len(kept))} of text of {b.size(total)} ({m.text_limit()})")
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


def register_types(types: FileTypes) -> None:
    types.read_gzipped_with(Gunzip)
