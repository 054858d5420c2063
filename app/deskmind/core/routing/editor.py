"""Edits to the person's routing.toml (runtimes, classes, rules, agents, zones): read, change, save.

Edits go through tomlkit so comments and layout survive; nothing is written unless the whole file
still validates (the parser gives file:line: what-is-wrong messages), and the write is atomic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from deskmind.core.config.files import atomic_write_text
from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.routing.config import FILENAME, RoutingConfig, default_text, parse_routing

EMBEDDED = "embedded"


@dataclass
class RuntimeEntry:
    """A runtime as the person knows it before anything is probed."""

    name: str
    kind: str
    zone: str
    url: str = ""
    models: list[str] = field(default_factory=list)
    enabled: bool = True
    key: str | None = None   # its keyring entry, if it has one
    in_file: bool = True   # False: built in (the embedded model), nothing to remove


class RoutingFile:
    def __init__(self, config_dir: Path) -> None:
        self.path = Path(config_dir) / FILENAME

    def text(self) -> str:
        """The person's file, or the shipped defaults when they have none yet."""
        return self.path.read_text(encoding="utf-8") if self.path.exists() else default_text()

    def validate(self, text: str) -> tuple[RoutingConfig | None, str | None]:
        """(config, None) when valid, else (None, the parser's message)."""
        try:
            return parse_routing(text, str(self.path)), None
        except DeskmindError as exc:
            return None, str(exc)

    def save_text(self, text: str) -> RoutingConfig:
        cfg, err = self.validate(text)
        if err or cfg is None:
            raise ValueError(err)
        atomic_write_text(self.path, text)
        return cfg

    def doc(self) -> tomlkit.TOMLDocument:
        return tomlkit.parse(self.text())

    def save_doc(self, doc: tomlkit.TOMLDocument) -> RoutingConfig:
        return self.save_text(tomlkit.dumps(doc))

    def set_table(self, section: str, name: str | None, values: dict[str, Any]) -> RoutingConfig:
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

    # -- runtimes ----------------------------------------------------------------------------

    def runtimes(self, embedded: bool) -> list[RuntimeEntry]:
        """The configured runtimes, then the built-in embedded one when ``embedded`` (it is
        installed) and the file does not configure it. Reads the file only: nothing is probed.
        Raises ValueError with the parser's message when the file is invalid."""
        cfg, err = self.validate(self.text())
        if cfg is None:
            raise ValueError(err)
        out = [RuntimeEntry(p.name, p.kind, p.zone, p.url, list(p.models), p.enabled, p.key)
               for p in cfg.providers.values()]
        if embedded and EMBEDDED not in cfg.providers:
            out.append(RuntimeEntry(EMBEDDED, "llamacpp", "machine", in_file=False))
        return out

    def set_runtime_enabled(self, name: str, enabled: bool, *, kind: str = "", url: str = "") -> RoutingConfig:
        """Switch a runtime off or on. One not in the file (the embedded model, a discovered
        server) gets a table of its own (``kind``, ``url`` given) so the choice is kept."""
        doc = self.doc()
        providers = doc.get("providers")
        if providers is None or name not in providers:
            if enabled:
                return self._config()
            if not kind:
                raise UserInputError(f"unknown runtime '{name}'")
            values: dict[str, Any] = {"kind": kind, "enabled": False}
            if url:
                values["url"] = url
            return self.set_table("providers", name, values)
        table = providers[name]
        if enabled:
            table.pop("enabled", None)
            if name == EMBEDDED and set(table) <= {"kind"}:
                del providers[name]   # back to the built-in embedded runtime
        else:
            table["enabled"] = False
        return self.save_doc(doc)

    def remove_runtime(self, name: str) -> RoutingConfig:
        """Delete ``[providers.name]``. Refused while a class or a rule's fallback names it
        (the file would no longer be valid): the message says where, and that disabling works."""
        doc = self.doc()
        providers = doc.get("providers")
        if providers is None or name not in providers:
            raise UserInputError(f"'{name}' is not in {self.path.name}: nothing to remove"
                                 + (" (the built-in embedded runtime can only be disabled)" if name == EMBEDDED else ""))
        users: list[str] = []
        if name != EMBEDDED:   # without its table the built-in one answers to the name
            cfg = self._config()
            users = [f"class '{c}'" for c, cands in cfg.classes.items() if any(_names(e, name) for e in cands)]
            users += [f"rule '{r.name}'" for r in cfg.rules if any(_names(e, name) for e in r.fallback)]
        if users:
            raise UserInputError(f"'{name}' is used by {', '.join(users)}: take it out there first, "
                                 "or disable it instead")
        del providers[name]
        return self.save_doc(doc)

    def _config(self) -> RoutingConfig:
        cfg, err = self.validate(self.text())
        if cfg is None:
            raise ValueError(err)
        return cfg


def _names(candidate: str, provider: str) -> bool:
    return candidate.partition(":")[0] == provider
