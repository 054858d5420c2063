"""Office documents: DOCX via python-docx, headings giving sections.

A DOCX is a zip archive. Before python-docx inflates anything, the archive's own directory
is checked: total uncompressed size, per-entry compression ratio and entry count. Python's
zipfile never inflates past the size an entry declares, so a lying header cannot get around
the check.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from deskmind.core.ingest.types import DamagedFile, Extracted, ExtractionError, FileTypes, Section

MAX_UNCOMPRESSED = 512 * 1024 * 1024
MAX_RATIO = 200          # real DOCX parts compress 3-20x; zeros compress ~1000x
RATIO_MIN_BYTES = 4 * 1024 * 1024
MAX_ENTRIES = 10_000


def check_zip(data: bytes, what: str = "archive") -> zipfile.ZipFile:
    """Open a zip held in ``data`` after refusing zip bombs; raise ExtractionError otherwise."""
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


def extract_docx(path: Path, data: bytes) -> Extracted:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    zf = check_zip(data, "DOCX")
    if "word/document.xml" not in zf.namelist():
        raise ExtractionError("not a DOCX: the zip has no word/document.xml")
    try:
        doc = docx.Document(io.BytesIO(data))
    except PackageNotFoundError as exc:
        raise ExtractionError(f"not a DOCX: {exc}") from exc
    except Exception as exc:  # lxml syntax errors, missing parts, ...
        raise DamagedFile(f"corrupt DOCX: {type(exc).__name__}: {exc}") from exc
    sections: list[Section] = []
    path_heads: list[tuple[int, str]] = []
    buf: list[str] = []

    def flush() -> None:
        body = "\n\n".join(b for b in buf if b.strip())
        if body.strip():
            loc = {"heading": [h for _, h in path_heads]} if path_heads else {}
            sections.append(Section(text=body, locator=loc))

    for para in doc.paragraphs:
        style = (para.style.name if para.style is not None else "") or ""
        text = para.text.strip()
        level = None
        if style.startswith("Heading"):
            try:
                level = int(style.split()[-1])
            except ValueError:
                level = 1
        elif style == "Title":
            level = 1
        if level is not None and text:
            flush()
            buf = [text]
            path_heads = [h for h in path_heads if h[0] < level] + [(level, text)]
        elif text:
            buf.append(text)
    flush()
    for n, table in enumerate(doc.tables, 1):
        rows = []
        for row in table.rows:
            cells = []
            for cell in row.cells:
                t = cell.text.strip()
                if t and (not cells or cells[-1] != t):  # merged cells repeat their text
                    cells.append(t)
            if cells:
                rows.append(" | ".join(cells))
        if rows:
            sections.append(Section(text="\n".join(rows), locator={"table": n}))
    if not sections:
        raise ExtractionError("DOCX has no text")
    props = doc.core_properties
    title = (props.title or "").strip() or next(
        (s.locator["heading"][0] for s in sections if s.locator.get("heading")), None)
    meta = {k: v for k, v in (("author", props.author), ("created", props.created),
                              ("modified", props.modified)) if v}
    return Extracted(title=title or path.stem, text="\n\n".join(s.text for s in sections),
                     sections=sections, extractor="python-docx",
                     metadata={k: str(v) for k, v in meta.items()})


def register_types(types: FileTypes) -> None:
    types.register([".docx", ".docm"], "docx", extract_docx, isolate=True)
