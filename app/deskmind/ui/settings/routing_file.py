"""The person's routing.toml (rules, runtimes, model classes, agents, zones): read, edit, save.

Edits go through tomlkit so comments and layout survive; nothing is written unless the whole
file still validates (the core's parser gives file:line: what-is-wrong messages).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit

from deskmind.core.config.files import atomic_write_text
from deskmind.core.errors import DeskmindError


class RoutingFile:
    def __init__(self, config_dir: Path) -> None:
        from deskmind.core.routing.config import FILENAME

        self.path = Path(config_dir) / FILENAME

    def text(self) -> str:
        """The person's file, or the shipped defaults when they have none yet."""
        from deskmind.core.routing.config import default_text

        return self.path.read_text(encoding="utf-8") if self.path.exists() else default_text()

    def validate(self, text: str) -> tuple[Any, str | None]:
        """(config, None) when valid, else (None, the parser's message)."""
        from deskmind.core.routing.config import parse_routing

        try:
            return parse_routing(text, str(self.path)), None
        except DeskmindError as exc:
            return None, str(exc)

    def save_text(self, text: str) -> Any:
        cfg, err = self.validate(text)
        if err:
            raise ValueError(err)
        atomic_write_text(self.path, text)
        return cfg

    def doc(self) -> tomlkit.TOMLDocument:
        return tomlkit.parse(self.text())

    def save_doc(self, doc: tomlkit.TOMLDocument) -> Any:
        return self.save_text(tomlkit.dumps(doc))

    def set_table(self, section: str, name: str | None, values: dict[str, Any]) -> Any:
        """Set keys of ``[section.name]`` (or ``[section]``), creating it; returns the config."""
        doc = self.doc()
        table = doc.get(section)
        if table is None:
            table = tomlkit.table(is_super_table=name is not None)
            doc[section] = table
        if name is not None:
            if name not in table:
                table[name] = tomlkit.table()
            table = table[name]
        for k, v in values.items():
            if v is None:
                table.pop(k, None)
            else:
                table[k] = v
        return self.save_doc(doc)
