"""A note written as text rather than spoken: ``deskmind note --text`` and the gateway's
``capture_note``. Notes are shared by every machine on the memory."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

from deskmind.core.errors import UserInputError
from deskmind.core.ingest.chunker import chunk_sections
from deskmind.core.ingest.types import Section
from deskmind.core.memory.models import DEFAULT_PRIVACY, PRIVACY_LEVELS, SourceDraft
from deskmind.core.memory.store import text_hash

MAX_CHARS = 100_000


def note_draft(text: str, *, title: str | None = None, privacy: str = DEFAULT_PRIVACY,
               metadata: dict[str, Any], extractor: str) -> SourceDraft:
    """A note source ready for ``Core.remember``, its text checked (not empty, at most
    :data:`MAX_CHARS`) and its privacy one of the known levels."""
    text = (text or "").strip()
    if not text:
        raise UserInputError("the note is empty")
    if len(text) > MAX_CHARS:
        raise UserInputError(f"the note is {len(text)} characters long; at most {MAX_CHARS} fit "
                             "in one note (index a file instead)")
    if privacy not in PRIVACY_LEVELS:
        raise UserInputError(f"unknown privacy '{privacy}': one of {', '.join(PRIVACY_LEVELS)}")
    return SourceDraft(
        uri=f"deskmind://note/{uuid.uuid4()}", kind="note",
        title=(title or text.splitlines()[0]).strip()[:120], content_hash=text_hash(text),
        size=len(text.encode()), mtime=time.time(), privacy=privacy, metadata=metadata, text=text,
        extractor=extractor, chunks=chunk_sections([Section(text=text, line_start=1)]))


def typed_note(text: str, *, title: str | None = None, privacy: str = DEFAULT_PRIVACY) -> SourceDraft:
    """``deskmind note --text``: the host it was written on is kept for display."""
    if not (text or "").strip():
        raise UserInputError("the note is empty: give its text after --text, or '-' to read stdin")
    return note_draft(text, title=title, privacy=privacy, extractor="typed",
                      metadata={"typed": True, "machine": socket.gethostname()})
