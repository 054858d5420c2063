"""The GGUF check refuses what is not a whole GGUF; the per-class choice survives a reload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deskmind.core.config.paths import Paths
from deskmind.core.errors import UserInputError
from deskmind.core.models import check_gguf, chosen_model, load_choices, set_chosen_model


def write_gguf(path: Path, n: int = 4096) -> Path:
    from gguf import GGUFWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny test model")
    writer.add_tensor("weights", np.arange(n, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.from_env({"DESKMIND_HOME": str(tmp_path / "home")})


def test_a_whole_gguf_is_read(tmp_path: Path) -> None:
    info = check_gguf(write_gguf(tmp_path / "m.gguf"))
    assert info.architecture == "llama"
    assert info.name == "tiny test model"
    assert info.tensor_count == 1
    assert info.size == (tmp_path / "m.gguf").stat().st_size


def test_not_a_gguf_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "page.gguf"
    bad.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(UserInputError, match="not a GGUF"):
        check_gguf(bad)


def test_a_truncated_gguf_is_refused(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(UserInputError, match="truncated|bad GGUF header"):
        check_gguf(path)


def test_a_bad_header_is_refused(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    data = bytearray(path.read_bytes())
    data[8:16] = b"\xff" * 8  # tensor count: absurd
    path.write_bytes(bytes(data))
    with pytest.raises(UserInputError, match="bad GGUF header|truncated"):
        check_gguf(path)


def test_choice_is_stored_and_reloaded(paths: Paths, tmp_path: Path) -> None:
    model = write_gguf(tmp_path / "dir with \"quote\" and ü" / "m.gguf")
    assert chosen_model(paths, "general") is None
    set_chosen_model(paths, "general", model)
    assert chosen_model(paths, "general") == model.resolve()
    assert chosen_model(paths, "coder") is None
    set_chosen_model(paths, "general", None)
    assert chosen_model(paths, "general") is None
    assert load_choices(paths) == {}


def test_choosing_a_non_gguf_or_unknown_class_is_refused(paths: Paths, tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"nope")
    with pytest.raises(UserInputError, match="not a GGUF"):
        set_chosen_model(paths, "fast", bad)
    with pytest.raises(UserInputError, match="unknown model class"):
        set_chosen_model(paths, "huge", write_gguf(tmp_path / "m.gguf"))
    assert load_choices(paths) == {}


def test_a_chosen_file_that_is_gone_is_not_chosen(paths: Paths, tmp_path: Path) -> None:
    model = write_gguf(tmp_path / "m.gguf")
    set_chosen_model(paths, "fast", model)
    model.unlink()
    assert chosen_model(paths, "fast") is None


def test_a_hand_written_bad_file_is_refused(paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    (paths.config_dir / "models.toml").write_text("[chosen]\nhuge = \"/x.gguf\"\n")
    with pytest.raises(UserInputError, match="unknown model class 'huge'"):
        chosen_model(paths, "general")


def test_routing_loads_the_chosen_general_model_unless_told_otherwise(
        paths: Paths, tmp_path: Path) -> None:
    from deskmind.core.routing.config import load_routing

    paths.config_dir.mkdir(parents=True)
    (paths.config_dir / "routing.toml").write_text(
        '[providers.mine]\nkind = "llamacpp"\n\n'
        '[providers.pinned]\nkind = "llamacpp"\nmodel_path = "/models/pinned.gguf"\n')
    assert load_routing(paths.config_dir).providers["mine"].model_path is None
    model = write_gguf(tmp_path / "m.gguf")
    set_chosen_model(paths, "general", model)
    cfg = load_routing(paths.config_dir)
    assert cfg.providers["mine"].model_path == str(model.resolve())
    assert cfg.providers["pinned"].model_path == "/models/pinned.gguf"
