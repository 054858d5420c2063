"""Gateway fixtures: a core with a little memory, a gateway, and its HTTP server on loopback."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

from deskmind.core.gateway.clients import Scopes
from deskmind.core.gateway.stack import Gateway, GatewayConfig, HttpServer
from deskmind.core.ingest.chunker import chunk_sections
from deskmind.core.ingest.types import Section
from deskmind.core.memory.models import SourceDraft

NOTES = {
    "garden": ("public", "Garden plan", "The tomatoes need water every Tuesday and Friday."),
    "trip": ("personal", "Trip to Lisbon", "Flights to Lisbon leave on the 3rd of May at 9am."),
    "salary": ("private", "Salary review", "My salary review with Dana is scheduled for June."),
    "vault": ("secret", "Bank codes", "The vault combination is 4-8-15-16-23-42."),
}


def remember_note(core: Any, key: str, privacy: str, title: str, text: str,
                  kind: str = "note") -> int:
    return core.remember(SourceDraft(
        uri=f"deskmind://{kind}/{key}", kind=kind, title=title, privacy=privacy, text=text,
        mtime=time.time(), extractor="test",
        chunks=chunk_sections([Section(text=text, line_start=1)])))


@pytest.fixture
def memory(core: Any) -> dict[str, int]:
    ids = {k: remember_note(core, k, *v) for k, v in NOTES.items()}
    ids["standup"] = remember_note(core, "standup", "personal", "Monday standup",
                                   "We agreed to ship the tray app beta on Friday.", kind="meeting")
    return ids


@pytest.fixture
def gateway(core: Any, memory: dict[str, int]) -> Iterator[Gateway]:
    gw = Gateway(core, GatewayConfig())
    yield gw
    gw.audit.flush()


def grant(gw: Gateway, name: str, **scopes: Any) -> str:
    gw.clients.grant(name, Scopes(**scopes))
    return gw.clients.rotate_token(name)


@pytest.fixture
def http_server(gateway: Gateway) -> Iterator[HttpServer]:
    srv = HttpServer(gateway.http_app(), port=0).start()
    yield srv
    srv.stop()
