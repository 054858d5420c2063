"""E-mail files (.eml), read with the standard library's email package."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from deskmind.core.ingest.extractors.htmlpage import html_to_text
from deskmind.core.ingest.types import Extracted, ExtractionError, FileTypes, Section


def extract_eml(path: Path, data: bytes) -> Extracted:
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data)
    except Exception as exc:
        raise ExtractionError(f"not a readable e-mail: {exc}") from exc
    headers = {k: str(msg.get(k, "")).strip() for k in ("from", "to", "cc", "date", "subject")}
    if not any(headers.values()):
        raise ExtractionError("not an e-mail: no From, To, Date or Subject header")
    body_text = ""
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is not None:
            content = part.get_content()
            if part.get_content_subtype() == "html":
                _, body_text, _ = html_to_text(content)
            else:
                body_text = content
    except (LookupError, UnicodeError, AttributeError) as exc:
        # Unknown charset: fall back to the raw payload decoded leniently.
        payload = msg.get_payload(decode=True) or b""
        body_text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if not body_text:
            raise ExtractionError(f"e-mail body not readable: {exc}") from exc
    attachments = [a.get_filename() or a.get_content_type() for a in msg.iter_attachments()]
    head = "\n".join(f"{k.capitalize()}: {v}" for k, v in headers.items() if v)
    text = head + "\n\n" + body_text.replace("\r\n", "\n").strip()
    meta = {k: v for k, v in headers.items() if v}
    if attachments:
        meta["attachments"] = attachments
    return Extracted(title=headers["subject"] or path.stem, text=text,
                     sections=[Section(text=text, locator={})], extractor="email", metadata=meta)


def register_types(types: FileTypes) -> None:
    types.register([".eml"], "email", extract_eml, isolate=True)
