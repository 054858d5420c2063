"""Shared set-up for pipeline tests: memory with tagged notes, fake runtimes, rules."""

from __future__ import annotations

import uuid

import pytest

from deskmind.core.memory.models import NewChunk, SourceDraft
from deskmind.core.runtimes.base import Timeouts
from deskmind.core.secrets import SecretStore

FAST = Timeouts(connect=1.0, first_token=5.0, stall=3.0, request=5.0)


def add_note(core, text: str, privacy: str, title: str | None = None) -> list[int]:
    sid = core.remember(SourceDraft(uri=f"deskmind://note/{uuid.uuid4()}", kind="note",
                                    title=title or text[:30], privacy=privacy, text=text,
                                    chunks=[NewChunk(text, {"line": 1})]))
    rows = core.store.sql.query("SELECT id FROM chunks WHERE source_id = ?", (sid,))
    return [r[0] for r in rows]


def no_secrets() -> SecretStore:
    return SecretStore(environ={})


@pytest.fixture
def hub_kw():
    """Hub options for tests: no usual-port discovery, no embedded model, fast timeouts."""
    return {"targets": (), "embedded": None, "timeouts": FAST, "secrets": no_secrets()}
