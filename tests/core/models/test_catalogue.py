"""The catalogue: every class has a choice, fits follows memory, ids are looked up."""

from __future__ import annotations

import psutil
import pytest

from deskmind.core.errors import UserInputError
from deskmind.core.models import MODEL_CLASSES
from deskmind.core.models.catalogue import CATALOGUE, catalogue, entry, machine_ram_mb


def test_every_class_has_a_model_and_urls_are_gguf_resolve_links():
    assert {e.cls for e in CATALOGUE} == set(MODEL_CLASSES)
    assert len({e.id for e in CATALOGUE}) == len(CATALOGUE)
    for e in CATALOGUE:
        assert e.url.startswith("https://huggingface.co/") and "/resolve/" in e.url
        assert e.url.endswith(".gguf") and e.ram_mb > e.size_mb


def test_fits_follows_memory():
    small = dict((e.id, fits) for e, fits in catalogue(ram_mb=1500))
    assert small["qwen2.5-0.5b"] and not small["qwen2.5-3b"] and not small["qwen2.5-1.5b"]
    assert all(fits for _, fits in catalogue(ram_mb=64 * 1024))
    assert machine_ram_mb() == psutil.virtual_memory().total // (1 << 20)


def test_unknown_id_is_refused_with_the_choices():
    assert entry("qwen2.5-coder-1.5b").cls == "coder"
    with pytest.raises(UserInputError, match="no catalogue model 'gpt-9'.*qwen2.5-0.5b"):
        entry("gpt-9")
