"""PDF: text per page, with the 1-based page number in each locator as ``page``.

pypdf is pure Python (BSD), about 4 ms a page here for ordinary text pages. A PDF whose pages
hold no text (a scan) is reported as such rather than stored empty; an encrypted PDF is read
when it opens with the empty password (as viewers do) and reported otherwise.

The file's budget bounds the pages read, the bytes of content streams parsed (each page's
streams counted every time they are used: 4,000 pages sharing one big stream cost 4,000 times
its size) and the time; when one is hit, the pages read so far are kept and the outcome says
where it stopped. Reading also stops once the text budget is full (the rest would be cut
anyway). Pages that draw the same content streams with the same resources have the same text:
it is extracted once (a stream shared by thousands of pages is parsed once, not per page).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from deskmind.core.ingest import budget as budget_mod
from deskmind.core.ingest.types import DamagedFile, Extracted, ExtractionError, FileTypes, Section

log = logging.getLogger(__name__)
# pypdf warns through logging about every repairable defect; the outcome says what matters.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def extract_pdf(path: Path, data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError, PdfStreamError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ExtractionError("not a PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:  # unsupported algorithm, missing crypto backend
                raise ExtractionError(f"encrypted PDF that cannot be opened: {exc}") from exc
            if not ok:
                raise ExtractionError("encrypted PDF: a password is needed to read it")
        pages = list(reader.pages)
    except ExtractionError:
        raise
    except FileNotDecryptedError as exc:
        raise ExtractionError("encrypted PDF: a password is needed to read it") from exc
    except (PdfReadError, PdfStreamError) as exc:
        raise DamagedFile(f"corrupt or truncated PDF: {exc}") from exc
    except Exception as exc:  # pypdf raises plain ValueError/KeyError/... on broken structure
        raise DamagedFile(f"corrupt or truncated PDF: {type(exc).__name__}: {exc}") from exc
    m = budget_mod.meter()
    total = len(pages)
    if total > m.budget.max_pages:
        pages = pages[: m.budget.max_pages]
        m.note(f"kept the first {budget_mod.count(len(pages))} pages of {budget_mod.count(total)} "
               f"({m.page_limit()})")
    sections: list[Section] = []
    failed_pages: list[int] = []
    stopped = None
    kept = 0
    seen: dict[str, str] = {}  # text of pages already read, by what draws them
    for n, page in enumerate(pages, 1):
        if kept >= m.budget.max_text_chars:
            stopped = (f"kept the first {budget_mod.size(m.budget.max_text_chars)} of text, from pages 1 to "
                       f"{budget_mod.count(n - 1)} of {budget_mod.count(total)} ({m.text_limit()})")
        elif not m.inflate(_content_bytes(page)):
            stopped = (f"stopped at page {budget_mod.count(n)} of {budget_mod.count(total)}: its pages' "
                       f"content streams come to more than {budget_mod.size(m.budget.max_inflated_bytes)} "
                       f"({m.inflate_limit()})")
        elif m.out_of_time():
            stopped = (f"stopped at page {budget_mod.count(n)} of {budget_mod.count(total)} after "
                       f"{m.elapsed():.0f} s ({m.time_limit()})")
        if stopped:
            if m.notes and m.notes[-1].startswith("kept the first"):
                m.notes.pop()  # stopped before the page budget: that note no longer says it
            m.note(stopped)
            break
        key = _drawn_by(page)
        text = seen.get(key) if key else None
        if text is None:
            try:
                text = page.extract_text() or ""
            except Exception as exc:  # one bad page must not lose the others
                log.debug("page %d of %s unreadable: %s", n, path, exc)
                failed_pages.append(n)
                continue
            text = text.replace("\x00", "").strip()
            if key:
                seen[key] = text
        if text:
            text = text[: m.budget.max_text_chars - kept]
            kept += len(text)
            sections.append(Section(text=text, locator={"page": n}))
    if not sections:
        if stopped:
            raise budget_mod.BudgetExceeded(f"refused: no text found before the budget stopped it: {stopped}")
        if failed_pages and len(failed_pages) == len(pages):
            raise DamagedFile(f"corrupt PDF: none of its {len(pages)} pages could be read")
        raise ExtractionError(
            f"PDF has no extractable text ({len(pages)} page{'s' if len(pages) != 1 else ''}; "
            "scanned images need OCR)")
    title = None
    try:
        meta = reader.metadata
        title = (meta.title or "").strip() if meta else None
    except Exception:
        title = None
    metadata = {"pages": len(pages)}
    if failed_pages:
        metadata["unreadable_pages"] = failed_pages
    return Extracted(title=title or path.stem, text="\n\n".join(s.text for s in sections),
                     sections=sections, extractor="pypdf", metadata=metadata)


def _drawn_by(page: "object") -> str | None:
    """What a page's text depends on: its content streams (as objects of the file), its
    resources (fonts) and rotation; None when its streams are not shared objects."""
    try:
        contents = page.get("/Contents")  # type: ignore[attr-defined]
        refs = contents if isinstance(contents, list) else [contents]
        if contents is None or not all(hasattr(r, "idnum") for r in refs):
            obj = contents.get_object() if contents is not None else None
            if not isinstance(obj, list) or not all(hasattr(r, "idnum") for r in obj):
                return None
            refs = list(obj)
        return repr(([(r.idnum, r.generation) for r in refs], page.get("/Resources"),  # type: ignore[attr-defined]
                     page.get("/Rotate")))  # type: ignore[attr-defined]
    except Exception:  # an odd structure: read the page as it is
        return None


def _content_bytes(page: "object") -> int:
    """Bytes of the page's content streams, decoded (pypdf keeps the decoded data, so a stream
    shared by many pages is inflated once but counted, like the parsing, per page)."""
    try:
        contents = page.get("/Contents")  # type: ignore[attr-defined]
        if contents is None:
            return 0
        contents = contents.get_object()
        streams = contents if isinstance(contents, list) else [contents]
        return sum(len(s.get_object().get_data()) for s in streams)
    except Exception:  # a broken stream: extract_text reports the page as unreadable
        return 0


def register_types(types: FileTypes) -> None:
    types.register([".pdf"], "pdf", extract_pdf, isolate=True)
