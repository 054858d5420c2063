"""The pre-roll and dictation settings: defaults, and values refused with where and what."""

from __future__ import annotations

import pytest

from deskmind.core.config.settings import load_settings
from deskmind.core.errors import UserInputError


def test_defaults_keep_the_pre_roll_on_and_save_dictation_as_notes(tmp_path):
    s = load_settings(tmp_path / "missing.toml").speech
    assert (s.preroll, s.preroll_s, s.dictate_save_note, s.dictate_clean_up, s.max_dictation_s) == (
        True, 0.3, True, False, 300.0)


@pytest.mark.parametrize("text, message", [
    ("[speech]\npreroll_s = 5\n", "[speech] preroll_s must be more than 0 and at most 2 seconds"),
    ("[speech]\npreroll_s = 0\n", "[speech] preroll_s must be more than 0 and at most 2 seconds"),
    ("[speech]\nmax_dictation_s = 0.5\n", "[speech] max_dictation_s must be between 1 and 3600 seconds"),
    ('[speech]\npreroll = "yes"\n', "[speech] preroll must be true or false, not 'yes'"),
])
def test_bad_values_are_refused(tmp_path, text, message):
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserInputError) as err:
        load_settings(path)
    assert str(err.value) == f"{path} {message}"
