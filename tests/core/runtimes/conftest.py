"""Helpers shared by the runtime tests: a transport to a fake server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from deskmind.core.runtimes.base import Timeouts
from deskmind.core.runtimes.http import Endpoint, Transport, make_client


def transport(url: str, *, zone: str = "machine", headers: dict | None = None,
              timeouts: Timeouts | None = None, egress: Any = None, client=None) -> Transport:
    t = timeouts or Timeouts(connect=1.0, first_token=3.0, stall=2.0, request=3.0)
    return Transport(client or make_client(t), Endpoint("fake", url, zone, dict(headers or {})), t,
                     egress=egress)


@pytest.fixture
def run():
    def _run(coro):
        return asyncio.run(coro)
    return _run
