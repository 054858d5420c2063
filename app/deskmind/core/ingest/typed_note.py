"""A note typed (or piped) rather than spoken: ``deskmind note --text``."""

from __future__ import annotations

import socket
import time
import uuid

from deskmind.core.errors import UserInputError
from deskmind.core.ingest.chunker import chunk_sections
from deskmind.core.ingest.types import Section
from deskmind.core.memory.models import DEFAULT_PRIVACY, PRIVACY_LEVELS, SourceDraft
from deskmind.core.memory.store import text_hash

MAX_CHARS = 100_000


def typed_note(text: str, *, title: str | None = None, privacy: str = DEFAULT_PRIVACY) -> SourceDraft:
    """A note source ready for ``Core.remember``. Notes are shared by every machine on the
    memory; the host it was written on is kept for display."""
    text = (text or "").strip()
    if not text:
        raise UserInputError("the note is empty: give its text after --text, or '-' to read stdin")
    if len(text) > MAX_CHARS:
        raise UserInputError(f"the note is {len(text)} characters long; at most {MAX_CHARS} fit "
                             "in one note (index a file instead)")
    if privacy not in PRIVACY_LEVELS:
        raise UserInputError(f"unknown privacy '{privacy}': one of {', '.join(PRIVACY_LEVELS)}")
    now = time.time()
    return SourceDraft(
        uri=f"deskmind://note/{uuid.uuid4()}", kind="note",
        title=(title or text.splitlines()[0]).strip()[:120], content_hash=text_hash(text),
        size=len(text.encode()), mtime=now, privacy=privacy,
        metadata={"typed": True, "machine": socket.gethostname()}, text=text, extractor="typed",
        chunks=chunk_sections([Section(text=text, line_start=1)]))
