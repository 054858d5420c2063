"""The settings schema: declared once, versioned, migrated, stored as TOML in the config dir.

Secrets never live here (API keys go to the OS keyring). Unknown keys are kept on save so a
newer Deskmind's settings survive an older one.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass
class EmbedderSettings:
    model_id: str = "minilm-l6-v2-int8"
    model_path: str | None = None
    tokenizer_path: str | None = None
    threads: int | None = None


@dataclass
class IngestSettings:
    max_file_mb: float = 50.0
    default_privacy: str = "private"
    # Audio/video is not read by the indexer (only queued for transcription): its own cap.
    max_media_mb: float = 4096.0
    # [[ingest.privacy_rules]] path = "~/Documents/public", privacy = "public";
    # the deepest rule containing a file wins, else default_privacy.
    privacy_rules: list[dict[str, Any]] = field(default_factory=list)
    # Extra .gitignore-style patterns applied under every indexed folder.
    ignore: list[str] = field(default_factory=list)
    # Folders `deskmind watch` keeps indexed when given no paths.
    watch: list[str] = field(default_factory=list)
    watch_debounce_s: float = 2.0


@dataclass
class Settings:
    schema_version: int = SCHEMA_VERSION
    embedder: EmbedderSettings = field(default_factory=EmbedderSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    extra: dict[str, Any] = field(default_factory=dict)


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise UserInputError(f"{where}: expected a table of settings")
    known = {f for f in cls.__dataclass_fields__}
    unknown = set(data) - known
    if unknown:
        log.warning("%s: unknown settings ignored: %s", where, ", ".join(sorted(unknown)))
    return cls(**{k: v for k, v in data.items() if k in known})


MIGRATIONS: dict[int, Any] = {}  # version -> function(dict) -> dict, upgrading to version + 1


def load_settings(path: Path) -> Settings:
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise UserInputError(f"cannot read settings {path}: {exc.strerror or exc}") from exc
    version = int(data.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise UserInputError(
            f"{path} was written by a newer Deskmind (schema {version}); upgrade to use it")
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    s = Settings()
    s.embedder = _section(EmbedderSettings, data.get("embedder", {}), f"{path} [embedder]")
    s.ingest = _section(IngestSettings, data.get("ingest", {}), f"{path} [ingest]")
    s.extra = {k: v for k, v in data.items() if k not in ("schema_version", "embedder", "ingest")}
    return s
