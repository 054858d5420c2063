"""The ``[speech]`` settings table: model, decoding, devices, meeting recording.

Declared with the rest of the schema in :mod:`deskmind.core.config.sections`; this module is
the speech package's view of it.
"""

from __future__ import annotations

from typing import Any

from deskmind.core.config.sections import SpeechSettings

__all__ = ["SpeechSettings", "speech_settings"]


def speech_settings(settings: Any) -> SpeechSettings:
    """The checked ``[speech]`` table of loaded settings (defaults when absent)."""
    declared = getattr(settings, "speech", None)
    return declared if isinstance(declared, SpeechSettings) else SpeechSettings()
