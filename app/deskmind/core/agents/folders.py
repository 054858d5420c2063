"""An agent's folder scopes (``read_paths``/``write_paths`` in routing.toml), edited in place.

Edits go through tomlkit so the person's comments survive, and nothing is written unless the
whole file still validates.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def add_agent_folder(config_dir: Path, agent: str, folder: str, *, write: bool = False) -> list[str]:
    """Add ``folder`` (made absolute) to the agent's read (or write) folders; returns them."""
    import tomlkit

    from deskmind.core.config.files import atomic_write_text
    from deskmind.core.errors import UserInputError
    from deskmind.core.routing.config import FILENAME, default_text, parse_routing

    real = os.path.realpath(os.path.expanduser(folder))
    if not os.path.isdir(real):
        raise UserInputError(f"{folder} is not a folder")
    path = Path(config_dir) / FILENAME
    doc = tomlkit.parse(path.read_text(encoding="utf-8") if path.exists() else default_text())
    agents = doc.setdefault("agents", tomlkit.table(is_super_table=True))
    if agent not in agents:
        agents[agent] = tomlkit.table()
    key = "write_paths" if write else "read_paths"
    paths = [str(p) for p in agents[agent].get(key, [])]
    if real not in paths:
        paths.append(real)
    agents[agent][key] = paths
    text = tomlkit.dumps(doc)
    parse_routing(text, str(path))  # raises with file:line when the result would not load
    atomic_write_text(path, text)
    return paths
