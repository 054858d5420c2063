"""Builds the talk and meeting controllers when the speech engine is installed."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def build_speech_controllers(app: Any) -> tuple[Any, Any]:
    """(talk controller, meeting controller); None for each part that is unavailable."""
    try:
        import deskmind.core.speech.recorder  # noqa: F401
    except ImportError as exc:
        log.info("speech unavailable: %s", exc)
        return None, None
    return None, None
