"""Speech test set-up: one real Whisper tiny.en model for the session, real audio fixtures."""

from __future__ import annotations

import pytest

from tests.fakes.audio import pulse, sd, speech_dir  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def whisper_engine():
    from deskmind.core.speech import SpeechSettings, TranscriptionEngine

    engine = TranscriptionEngine(SpeechSettings())
    engine.model()
    yield engine
    engine.close()


@pytest.fixture
def speech(core, whisper_engine):
    from deskmind.core.speech import Speech

    s = Speech(core, engine=whisper_engine)
    yield s
    s.close()


def words(text: str) -> set[str]:
    return {w.strip(".,!?;:'\"").lower() for w in text.split()}


def heard(text: str, expected: set[str], at_least: int) -> bool:
    """Live-captured speech lands at a random offset in Whisper's window and tiny.en then
    mishears a word now and then (plumber/Plummer): require most, not all, key words."""
    return len(words(text) & expected) >= at_least
