"""Every path Deskmind writes under.

All state lives under one root: ``DESKMIND_HOME`` when set (tests always set it), otherwise
the platform's user data, config and cache folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "deskmind"


@dataclass(frozen=True)
class Paths:
    data_dir: Path
    config_dir: Path
    cache_dir: Path

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> "Paths":
        env = os.environ if environ is None else environ
        home = env.get("DESKMIND_HOME")
        if home:
            root = Path(home).expanduser().resolve()
            return cls(data_dir=root / "data", config_dir=root / "config", cache_dir=root / "cache")
        return cls(
            data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "memory.db"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def settings_path(self) -> Path:
        return self.config_dir / "settings.toml"
