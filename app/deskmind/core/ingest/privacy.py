"""Privacy tags for files, inherited from per-folder rules.

Rules live in settings.toml::

    [ingest]
    default_privacy = "private"

    [[ingest.privacy_rules]]
    path = "~/Documents/public-notes"
    privacy = "public"

    [[ingest.privacy_rules]]
    path = "~/Documents/public-notes/drafts"
    privacy = "personal"

A file takes the tag of the deepest rule whose folder contains it (so a sub-folder can
tighten or loosen what its parent says), else ``default_privacy``. Folders and files are
compared by their real paths (symbolic links resolved), so a file reached through a link keeps
the tag of the folder it really lives in. Routing uses the tag to
keep private material away from cloud models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from deskmind.core.errors import UserInputError
from deskmind.core.memory.models import DEFAULT_PRIVACY, PRIVACY_LEVELS


@dataclass(frozen=True)
class PrivacyRule:
    path: str  # absolute, no trailing slash
    privacy: str


class PrivacyRules:
    def __init__(self, rules: Iterable[PrivacyRule] = (), default: str = DEFAULT_PRIVACY) -> None:
        if default not in PRIVACY_LEVELS:
            raise UserInputError(
                f"[ingest] default_privacy = '{default}' is not one of {', '.join(PRIVACY_LEVELS)}")
        self.default = default
        # Deepest first, so the first match is the most specific rule.
        self.rules = sorted(rules, key=lambda r: r.path.count("/"), reverse=True)

    @classmethod
    def from_settings(cls, raw: list[dict[str, Any]], default: str = DEFAULT_PRIVACY) -> "PrivacyRules":
        rules = []
        for n, item in enumerate(raw or [], 1):
            where = f"[[ingest.privacy_rules]] #{n}"
            if not isinstance(item, dict) or "path" not in item or "privacy" not in item:
                raise UserInputError(f"{where} needs path = \"FOLDER\" and privacy = \"LEVEL\"")
            level = str(item["privacy"])
            if level not in PRIVACY_LEVELS:
                raise UserInputError(
                    f"{where}: privacy = '{level}' is not one of {', '.join(PRIVACY_LEVELS)}")
            path = os.path.realpath(os.path.expanduser(str(item["path"]))).rstrip("/") or "/"
            rules.append(PrivacyRule(path, level))
        return cls(rules, default)

    def __call__(self, path: Path | str) -> str:
        """The tag for a file given by its real path (the indexer resolves links once per
        file; resolving again here would cost a system call per folder on every re-scan)."""
        p = str(path)
        for r in self.rules:
            if p == r.path or p.startswith(r.path + "/") or r.path == "/":
                return r.privacy
        return self.default
