"""The settings schema: declared once, versioned, migrated, stored as TOML in the config dir.

Each table of settings.toml is a typed section (:mod:`deskmind.core.config.sections` holds the
speech, gateway, engine and storage ones). Secrets never live here (API keys and database
passwords go to the OS keyring). Tables and keys no section declares are left in the file untouched (the store edits the file in place), so a
newer Deskmind's settings survive an older one. Writes go through
:class:`~deskmind.core.config.store.SettingsStore`.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from deskmind.core.config.schema import parse_section
from deskmind.core.config.sections import (
    EngineSettings,
    GatewayConfig,
    SpeechSettings,
    StorageSettings,
)
from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_BYTES = 1 << 20   # a settings file is a few KB; refuse to parse anything near this


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
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    engine: EngineSettings = field(default_factory=EngineSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)


def section_types() -> dict[str, type]:
    """Each table of settings.toml and the dataclass that declares it."""
    return {f.name: f.default_factory for f in fields(Settings)  # type: ignore[misc]
            if f.name != "schema_version"}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}  # version -> upgrade to +1


def parse_settings(data: dict[str, Any], where: str) -> Settings:
    """Settings from a whole TOML document (plain Python); ``where`` names the file in errors."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UserInputError(f"{where}: schema_version must be a whole number from 1, not {version!r}")
    if version > SCHEMA_VERSION:
        raise UserInputError(
            f"{where} was written by a newer Deskmind (schema {version}); upgrade to use it")
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    types = section_types()
    unknown = sorted(set(data) - set(types) - {"schema_version"})
    if unknown:
        log.warning("%s: unknown tables left as they are: %s", where, ", ".join(unknown))
    return Settings(**{name: parse_section(cls, data.get(name, {}), f"{where} [{name}]")
                       for name, cls in types.items()})


def read_settings_text(path: Path) -> str:
    """The file's text ("" when it does not exist), or a clear error."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise UserInputError(f"{path} is larger than {MAX_BYTES // 1024} KB: not a settings file")
        return raw.decode("utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise UserInputError(f"cannot read settings {path}: {exc.strerror or exc}") from exc


def load_settings(path: Path) -> Settings:
    try:
        data = tomllib.loads(read_settings_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{path}: {exc}") from exc
    return parse_settings(data, str(path))
