"""Which GGUF answers for each model class, stored in models.toml in the config dir.

The file is written atomically (temp file + rename); the engine side asks
:func:`chosen_model` for the file the embedded runtime should load.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from deskmind.core.config.files import atomic_write_text
from deskmind.core.config.paths import Paths
from deskmind.core.errors import UserInputError
from deskmind.core.models.gguf_check import check_gguf

MODEL_CLASSES = ("fast", "general", "coder")


def _choices_path(paths: Paths) -> Path:
    return paths.config_dir / "models.toml"


def load_choices(paths: Paths) -> dict[str, Path]:
    return _load_choices_file(_choices_path(paths))


def _load_choices_file(path: Path) -> dict[str, Path]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    chosen = data.get("chosen", {})
    if not isinstance(chosen, dict):
        raise UserInputError(f"{path}: [chosen] must be a table of class = \"file\"")
    out: dict[str, Path] = {}
    for cls, value in chosen.items():
        if cls not in MODEL_CLASSES:
            raise UserInputError(
                f"{path}: unknown model class {cls!r} (one of {', '.join(MODEL_CLASSES)})")
        if not isinstance(value, str) or not value:
            raise UserInputError(f"{path}: chosen.{cls} must be a file path")
        out[cls] = Path(value)
    return out


def chosen_model(paths: Paths, cls: str) -> Path | None:
    """The GGUF chosen for ``cls``, or None when none is chosen or the file is gone."""
    return chosen_model_in(paths.config_dir, cls)


def chosen_model_in(config_dir: Path, cls: str) -> Path | None:
    """:func:`chosen_model` for a config dir alone (the routing loader has no Paths)."""
    if cls not in MODEL_CLASSES:
        raise UserInputError(f"unknown model class {cls!r} (one of {', '.join(MODEL_CLASSES)})")
    path = _load_choices_file(Path(config_dir) / "models.toml").get(cls)
    return path if path is not None and path.is_file() else None


def set_chosen_model(paths: Paths, cls: str, model: Path | None) -> None:
    """Choose ``model`` (checked as a GGUF first) for ``cls``; None clears the choice."""
    if cls not in MODEL_CLASSES:
        raise UserInputError(f"unknown model class {cls!r} (one of {', '.join(MODEL_CLASSES)})")
    choices = load_choices(paths)
    if model is None:
        choices.pop(cls, None)
    else:
        model = Path(model).expanduser().resolve()
        check_gguf(model)
        choices[cls] = model
    lines = ["[chosen]"] + [f"{k} = {json.dumps(str(v))}" for k, v in sorted(choices.items())]
    target = _choices_path(paths)
    atomic_write_text(target, "\n".join(lines) + "\n")
