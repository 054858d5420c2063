"""Wiring the gateway to the rest of the core (routing, runtimes, the ask pipeline)."""

from __future__ import annotations

import logging
from typing import Any

from deskmind.core.gateway.stack import Gateway

log = logging.getLogger(__name__)


def build_gateway(core: Any) -> Gateway:
    return Gateway(core)
