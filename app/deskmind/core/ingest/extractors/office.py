"""Office documents: DOCX, read as a stream; headings give sections, tables come after.

A DOCX is a zip archive. Its directory is checked first (entry count, declared sizes and
ratios: cheap, and it refuses the obvious zip bombs before anything is inflated), but declared
sizes can lie, so the parts are then read through :class:`CountingReader`, which counts the
bytes actually inflated against the file's budget. ``word/document.xml`` is parsed with the
standard library's ``iterparse`` and each element is dropped once read: memory stays flat
however large the part, and the text budget and time budget stop it part-way, keeping what
was read.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree as ET

from deskmind.core.ingest import budget as budget_mod
from deskmind.core.ingest.types import DamagedFile, Extracted, ExtractionError, FileTypes, Section

MAX_UNCOMPRESSED = 512 * 1024 * 1024
MAX_RATIO = 200          # real DOCX parts compress 3-20x; zeros compress ~1000x
RATIO_MIN_BYTES = 4 * 1024 * 1024
MAX_ENTRIES = 10_000
MAX_SMALL_PART = 16 * 1024 * 1024   # styles.xml, core.xml: a few kB in real documents

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_DCTERMS = "{http://purl.org/dc/terms/}"


class _Stop(Exception):
    """A budget was hit while reading a part: keep what was read."""

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


def check_zip(data: bytes, what: str = "archive") -> zipfile.ZipFile:
    """Open a zip held in ``data`` after refusing zip bombs by its directory; raise
    ExtractionError otherwise. Read its parts through :class:`CountingReader`."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise DamagedFile(f"not a valid {what} (broken zip container): {exc}") from exc
    if len(infos) > MAX_ENTRIES:
        raise ExtractionError(f"refused: {what} holds {len(infos)} parts (a zip bomb?)")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED:
        raise ExtractionError(
            f"refused: {what} would inflate to {total / 1e6:.0f} MB from {len(data) / 1e6:.1f} MB "
            f"(limit {MAX_UNCOMPRESSED / 1e6:.0f} MB; a zip bomb?)")
    for i in infos:
        if i.file_size > RATIO_MIN_BYTES and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise ExtractionError(
                f"refused: part {i.filename} of this {what} inflates {i.file_size // max(i.compress_size, 1)}x "
                f"({i.compress_size / 1e3:.0f} kB to {i.file_size / 1e6:.0f} MB; a zip bomb?)")
    return zf


class CountingReader(io.RawIOBase):
    """A zip part read as it inflates, every byte counted against the file's budget (and the
    time budget checked at every read); raises :class:`_Stop` when one is hit."""

    def __init__(self, zf: zipfile.ZipFile, name: str, what: str, limit: int | None = None) -> None:
        super().__init__()
        self.name, self.what, self.limit = name, what, limit
        self.meter = budget_mod.meter()
        self.read_bytes = 0
        try:
            self.fh: IO[bytes] = zf.open(name)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
            raise DamagedFile(f"corrupt {what}: cannot open part {name}: {exc}") from exc

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = 64 * 1024 if n is None or n < 0 else min(n, 1 << 20)
        try:
            data = self.fh.read(n)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            # zipfile stops at the size the header declares; a part that holds more (or other)
            # data than its header says fails its CRC check here.
            raise DamagedFile(f"corrupt {self.what}: part {self.name} does not match its header "
                              f"({exc})") from exc
        self.read_bytes += len(data)
        m = self.meter
        if not m.inflate(len(data)):
            raise _Stop(f"stopped reading {self.name} after inflating {budget_mod.size(m.inflated)} "
                        f"({m.inflate_limit()})")
        if self.limit is not None and self.read_bytes > self.limit:
            raise ExtractionError(f"refused: part {self.name} of this {self.what} is larger than "
                                  f"{budget_mod.size(self.limit)} (real ones are a few kB)")
        if m.out_of_time():
            raise _Stop(f"stopped reading {self.name} after {m.elapsed():.0f} s ({m.time_limit()})")
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _small_part(zf: zipfile.ZipFile, name: str) -> list[ET.Element]:
    """The elements of a small part (styles, properties), or [] when it is absent or unreadable."""
    if name not in zf.namelist():
        return []
    try:
        return [e for _, e in ET.iterparse(CountingReader(zf, name, "DOCX", MAX_SMALL_PART))]
    except (ET.ParseError, _Stop):
        return []


def _style_names(zf: zipfile.ZipFile) -> dict[str, str]:
    """Paragraph style id -> name ("Heading1" -> "heading 1")."""
    names: dict[str, str] = {}
    for e in _small_part(zf, "word/styles.xml"):
        if e.tag == f"{W}style":
            name = e.find(f"{W}name")
            sid = e.get(f"{W}styleId")
            if sid and name is not None:
                names[sid] = name.get(f"{W}val") or sid
    return names


def _heading_level(style: str) -> int | None:
    s = style.strip().lower()
    if s == "title":
        return 1
    if s.startswith("heading"):
        try:
            return int(s.split()[-1])
        except ValueError:
            return 1
    return None


class _Body:
    """Builds sections from the stream of ``document.xml``: paragraphs (heading paths) and tables."""

    def __init__(self, styles: dict[str, str], max_chars: int) -> None:
        self.styles, self.max_chars = styles, max_chars
        self.chars = 0
        self.sections: list[Section] = []
        self.tables: list[Section] = []
        self.heads: list[tuple[int, str]] = []
        self.buf: list[str] = []
        self.run_text: list[list[str]] = []      # text of each open paragraph
        self.para_style: list[str] = []
        self.cells: list[list[str]] = []         # paragraphs of each open table cell
        self.rows: list[list[str]] = []          # cells of each open table row
        self.table_rows: list[list[str]] = []    # rows of each open table

    def start(self, tag: str) -> None:
        if tag == f"{W}p":
            self.run_text.append([])
            self.para_style.append("")
        elif tag == f"{W}tc":
            self.cells.append([])
        elif tag == f"{W}tr":
            self.rows.append([])
        elif tag == f"{W}tbl":
            self.table_rows.append([])

    def end(self, e: ET.Element) -> None:
        tag = e.tag
        if tag == f"{W}t" and self.run_text:
            self._text(e.text or "")
        elif tag == f"{W}tab" and self.run_text:
            self._text("\t")
        elif tag in (f"{W}br", f"{W}cr") and self.run_text:
            self._text("\n")
        elif tag == f"{W}pStyle" and self.para_style:
            self.para_style[-1] = e.get(f"{W}val") or ""
        elif tag == f"{W}p" and self.run_text:
            text = "".join(self.run_text.pop()).strip()
            style = self.styles.get(self.para_style[-1], self.para_style[-1])
            self.para_style.pop()
            self.chars += 2  # the blank line that will join it to the next: text too
            if self.cells:
                if text:
                    self.cells[-1].append(text)
            else:
                self._paragraph(text, style)
        elif tag == f"{W}tc" and self.cells:
            t = "\n".join(self.cells.pop()).strip()
            if self.rows and t and (not self.rows[-1] or self.rows[-1][-1] != t):
                self.rows[-1].append(t)  # merged cells repeat their text
        elif tag == f"{W}tr" and self.rows:
            cells = self.rows.pop()
            if cells and self.table_rows:
                self.table_rows[-1].append(" | ".join(cells))
        elif tag == f"{W}tbl" and self.table_rows:
            rows = self.table_rows.pop()
            if rows:
                text = "\n".join(rows)
                if self.cells:   # a table inside a table cell: its text joins the cell
                    self.cells[-1].append(text)
                else:
                    self.tables.append(Section(text=text, locator={"table": len(self.tables) + 1}))

    def _text(self, t: str) -> None:
        room = self.max_chars - self.chars
        self.chars += min(len(t), room)
        self.run_text[-1].append(t[:room])
        if len(t) > room:
            raise _Stop(f"kept the first {budget_mod.size(self.max_chars)} of text; the rest of the "
                        f"document was not read ({budget_mod.meter().text_limit()})")

    def _paragraph(self, text: str, style: str) -> None:
        level = _heading_level(style) if style else None
        if level is not None and text:
            self.flush()
            self.buf = [text]
            self.heads = [h for h in self.heads if h[0] < level] + [(level, text)]
        elif text:
            self.buf.append(text)

    def flush(self) -> None:
        body = "\n\n".join(b for b in self.buf if b.strip())
        if body.strip():
            loc = {"heading": [h for _, h in self.heads]} if self.heads else {}
            self.sections.append(Section(text=body, locator=loc))
        self.buf = []

    def finish(self) -> None:
        """After a stop part-way: what open paragraphs hold counts too."""
        if self.run_text and not self.cells:
            self._paragraph("".join(self.run_text[-1]).strip(), "")
        self.flush()


def read_body(zf: zipfile.ZipFile, part: str, body: _Body) -> str | None:
    """Stream ``part`` into ``body``; a note when a budget stopped it part-way."""
    stack: list[ET.Element] = []
    try:
        for event, e in ET.iterparse(CountingReader(zf, part, "DOCX"), events=("start", "end")):
            if event == "start":
                stack.append(e)
                body.start(e.tag)
                continue
            body.end(e)
            stack.pop()
            if stack:
                stack[-1].remove(e)  # read: let it go (it is the last child, found at once)
            e.clear()
    except _Stop as stop:
        body.finish()
        return stop.note
    except ET.ParseError as exc:
        raise DamagedFile(f"corrupt DOCX: {part} is not well-formed XML ({exc})") from exc
    body.finish()
    return None


def extract_docx(path: Path, data: bytes) -> Extracted:
    m = budget_mod.meter()
    zf = check_zip(data, "DOCX")
    if "word/document.xml" not in zf.namelist():
        raise ExtractionError("not a DOCX: the zip has no word/document.xml")
    body = _Body(_style_names(zf), m.budget.max_text_chars)
    note = read_body(zf, "word/document.xml", body)
    if note:
        m.note(note)
    sections = body.sections + body.tables
    if not sections:
        if note:
            raise budget_mod.BudgetExceeded(f"refused: no text found before the budget stopped it: {note}")
        raise ExtractionError("DOCX has no text")
    props = {e.tag: (e.text or "").strip() for e in _small_part(zf, "docProps/core.xml")}
    title = props.get(f"{_DC}title") or next(
        (s.locator["heading"][0] for s in sections if s.locator.get("heading")), None)
    meta = {k: v for k, v in (("author", props.get(f"{_DC}creator")), ("created", props.get(f"{_DCTERMS}created")),
                              ("modified", props.get(f"{_DCTERMS}modified"))) if v}
    return Extracted(title=title or path.stem, text="\n\n".join(s.text for s in sections),
                     sections=sections, extractor="docx", metadata=meta)


def register_types(types: FileTypes) -> None:
    types.register([".docx", ".docm"], "docx", extract_docx, isolate=True)
