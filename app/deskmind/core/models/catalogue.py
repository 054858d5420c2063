"""Recommended GGUF models per class, with the download size and the memory each needs.

Sizes are those of the Q4_K_M files as published (rounded); ``ram_mb`` adds room for the
context and the runtime. ``fits`` compares it with this machine's total memory (psutil).
No sha256 is pinned: the publisher's files may be re-uploaded; the GGUF check still runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deskmind.core.errors import UserInputError

_HF = "https://huggingface.co"


@dataclass(frozen=True)
class CatalogueEntry:
    id: str
    cls: str
    title: str
    url: str
    size_mb: int
    ram_mb: int
    sha256: str | None = None

    def to_dict(self, fits: bool) -> dict[str, Any]:
        return {**asdict(self), "fits": fits}


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("qwen2.5-0.5b", "fast", "Qwen2.5 0.5B Instruct (Q4_K_M)",
                   f"{_HF}/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf",
                   400, 1024),
    CatalogueEntry("qwen2.5-1.5b", "general", "Qwen2.5 1.5B Instruct (Q4_K_M)",
                   f"{_HF}/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf",
                   1100, 2048),
    CatalogueEntry("qwen2.5-3b", "general", "Qwen2.5 3B Instruct (Q4_K_M)",
                   f"{_HF}/Qwen/Qwen2.5-3B-Instruct-GGUF/resolve/main/qwen2.5-3b-instruct-q4_k_m.gguf",
                   2100, 3584),
    CatalogueEntry("qwen2.5-coder-1.5b", "coder", "Qwen2.5 Coder 1.5B Instruct (Q4_K_M)",
                   f"{_HF}/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/resolve/main/"
                   "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1100, 2048),
    CatalogueEntry("qwen2.5-coder-3b", "coder", "Qwen2.5 Coder 3B Instruct (Q4_K_M)",
                   f"{_HF}/Qwen/Qwen2.5-Coder-3B-Instruct-GGUF/resolve/main/"
                   "qwen2.5-coder-3b-instruct-q4_k_m.gguf", 2100, 3584),
)


def machine_ram_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().total // (1 << 20))


def catalogue(ram_mb: int | None = None) -> list[tuple[CatalogueEntry, bool]]:
    """Every entry with whether it fits ``ram_mb`` (default: this machine's memory)."""
    ram = machine_ram_mb() if ram_mb is None else ram_mb
    return [(e, e.ram_mb <= ram) for e in CATALOGUE]


def entry(entry_id: str) -> CatalogueEntry:
    for e in CATALOGUE:
        if e.id == entry_id:
            return e
    raise UserInputError(f"no catalogue model '{entry_id}' "
                         f"(one of {', '.join(e.id for e in CATALOGUE)})")


def in_library(e: CatalogueEntry, data_dir: Path) -> Path | None:
    """The entry's file when it was pulled into the library already."""
    from deskmind.core.models.download import library_path

    path = library_path(e.url, data_dir)
    return path if path.is_file() else None


def chosen_entries(paths: Any, entries: Any = CATALOGUE) -> dict[str, str]:
    """Class -> id of the catalogue entry chosen for it (classes given another file are left
    out)."""
    from deskmind.core.models.choice import load_choices

    by_name = {e.url.rsplit("/", 1)[-1]: e.id for e in entries}
    return {cls: by_name[p.name] for cls, p in load_choices(paths).items() if p.name in by_name}
