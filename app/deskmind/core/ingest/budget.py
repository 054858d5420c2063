"""What extracting one file may cost, and what it has spent so far.

A :class:`Budget` bounds one file: bytes inflated (gzip, zip members, PDF content streams,
counted as they are inflated, never from declared sizes), characters of text kept, pages and
wall time. Extractors ask the :class:`Meter` of the file being extracted (:func:`meter`) as they
go; when a budget is hit they either stop and keep what they have, adding a note that says
what was left out ("kept the first 16 MB of text of 250 MB"), or refuse the file with
:class:`BudgetExceeded`. The meter lives in a context variable so extractors keep their plain
``(path, data)`` signature; :func:`metering` sets it for one file, in a parser process or in
the indexer's own thread.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from deskmind.core.ingest.types import Extracted, ExtractionError, Section

MB = 1024 * 1024
WHERE = "Settings → Indexing"


class BudgetExceeded(ExtractionError):
    """The file was refused: reading it would cost more than its budget allows."""


@dataclass(frozen=True)
class Budget:
    """Limits for one file (sent to parser processes, so plain values only)."""

    max_inflated_bytes: int = 256 * MB
    max_text_chars: int = 16 * MB
    max_pages: int = 3000
    max_seconds: float = 120.0

    @classmethod
    def from_settings(cls, s: Any) -> "Budget":
        """From an :class:`~deskmind.core.config.sections.ExtractionSettings`."""
        return cls(max_inflated_bytes=int(s.max_inflated_mb * MB), max_text_chars=int(s.max_text_mb * MB),
                   max_pages=int(s.max_pages), max_seconds=float(s.max_seconds))

    def limits(self) -> tuple[str, str, str, str]:
        """The sentences people read, one per limit (inflate, time, text, pages), so every
        extractor says it the same way and a note says which value it was read under."""
        return (f"inflate budget per file: {size(self.max_inflated_bytes)}",
                f"time budget per file: {self.max_seconds:g} s",
                f"text budget per file: {size(self.max_text_chars)}",
                f"page budget per file: {count(self.max_pages)}")


def parser_limit(memory_mb: int) -> str:
    """The sentence naming the memory limit of a parser process."""
    return f"memory limit per parser: {memory_mb:,} MB"


def read_under_other_limits(note: str | None, budget: Budget, parser_memory_mb: int | None) -> bool:
    """Whether a file that a limit cut short or refused (``note`` is what was said then, which
    names the limit and its value) was read under a value that is no longer in force: raising
    a budget in Settings → Indexing then gets the file read again though it did not change."""
    if not note or ("budget per file:" not in note and "memory limit per parser:" not in note):
        return False
    now = list(budget.limits())
    if parser_memory_mb:
        now.append(parser_limit(parser_memory_mb))
    elif "memory limit per parser:" in note:
        return True          # parser processes are off now: no memory limit
    return any(sentence.split(":", 1)[0] + ":" in note and sentence not in note for sentence in now)


def size(n: float) -> str:
    """Megabytes for people, as the settings count them: 250 MB, 16 MB, 1.5 MB, 0.2 MB."""
    v = n / MB
    return f"{v:,.0f} MB" if v >= 10 else f"{v:.1f} MB" if v >= 0.1 else f"{v:.2g} MB"


def count(n: int) -> str:
    return f"{n:,}"


@dataclass
class Meter:
    """What one file has spent. Used on one thread (the one extracting the file)."""

    budget: Budget
    clock: Callable[[], float] = time.monotonic
    inflated: int = 0
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def inflate(self, n: int) -> bool:
        """Count ``n`` more bytes inflated; False once the total is past the budget."""
        self.inflated += n
        return self.inflated <= self.budget.max_inflated_bytes

    def elapsed(self) -> float:
        return self.clock() - self.started

    def out_of_time(self) -> bool:
        return self.elapsed() > self.budget.max_seconds

    def note(self, text: str) -> None:
        self.notes.append(text)

    def inflate_limit(self) -> str:
        return f"{self.budget.limits()[0]}; {WHERE}"

    def time_limit(self) -> str:
        return f"{self.budget.limits()[1]}; {WHERE}"

    def text_limit(self) -> str:
        return f"{self.budget.limits()[2]}; {WHERE}"

    def page_limit(self) -> str:
        return f"{self.budget.limits()[3]}; {WHERE}"


_current: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("deskmind_extract_meter", default=None)


def meter() -> Meter:
    """The meter of the file being extracted; a fresh one with default limits when an extractor
    is called directly (tests, tools)."""
    m = _current.get()
    if m is None:
        m = Meter(Budget())
        _current.set(m)
    return m


@contextlib.contextmanager
def metering(budget: Budget) -> Iterator[Meter]:
    """Extract one file under ``budget`` (on the calling thread)."""
    m = Meter(budget)
    token = _current.set(m)
    try:
        yield m
    finally:
        _current.reset(token)


def keep_text(ex: Extracted, m: Meter) -> Extracted:
    """Cut the extracted text to the text budget (the first sections, the last one cut short),
    noting what was left out; the notes of the meter go into ``ex.left_out``."""
    limit = m.budget.max_text_chars
    total = sum(len(s.text) for s in ex.sections)
    if total > limit:
        kept: list[Section] = []
        room = limit
        for s in ex.sections:
            if room <= 0:
                break
            if len(s.text) > room:
                s = Section(s.text[:room], dict(s.locator), s.line_start)
            kept.append(s)
            room -= len(s.text)
        ex.sections = kept
        ex.text = ex.text[:limit]
        m.note(f"kept the first {size(limit)} of text of {size(total)} "
               f"({m.text_limit()})")
    ex.left_out = ex.left_out + m.notes
    return ex


def run_metered(extract: Callable[..., Extracted], path: Any, data: bytes, budget: Budget) -> Extracted:
    """``extract(path, data)`` under ``budget``, its text cut to the budget."""
    with metering(budget) as m:
        return keep_text(extract(path, data), m)
