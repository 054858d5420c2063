"""PDF: text per page, with the 1-based page number in each locator as ``page``.

pypdf is pure Python (BSD), about 4 ms a page here for ordinary text pages. A PDF whose pages
hold no text (a scan) is reported as such rather than stored empty; an encrypted PDF is read
when it opens with the empty password (as viewers do) and reported otherwise.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

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
    sections: list[Section] = []
    failed_pages: list[int] = []
    for n, page in enumerate(pages, 1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # one bad page must not lose the others
            log.debug("page %d of %s unreadable: %s", n, path, exc)
            failed_pages.append(n)
            continue
        text = text.replace("\x00", "").strip()
        if text:
            sections.append(Section(text=text, locator={"page": n}))
    if not sections:
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


def register_types(types: FileTypes) -> None:
    types.register([".pdf"], "pdf", extract_pdf, isolate=True)
