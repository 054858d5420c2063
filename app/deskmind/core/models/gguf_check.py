"""Check that a file is a whole, readable GGUF before it is installed or loaded.

The header is read with the ``gguf`` package; a file that is not a GGUF, has a bad header or
is shorter than its tensors say is refused with a message naming the file and the fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deskmind.core.errors import UserInputError

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    size: int
    architecture: str | None
    name: str | None
    tensor_count: int


def _field_str(reader, key: str) -> str | None:
    field = reader.fields.get(key)
    if field is None or not field.data:
        return None
    try:
        return bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")
    except (IndexError, TypeError, ValueError):
        return None


def check_gguf(path: Path) -> GGUFInfo:
    """Return what the GGUF header says, or raise UserInputError saying why it is refused."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if magic != GGUF_MAGIC:
        raise UserInputError(f"{path} is not a GGUF model (it does not start with 'GGUF')")
    from gguf import GGUFReader  # heavy (numpy); only when a file is checked

    try:
        reader = GGUFReader(path, "r")
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception as exc:  # the reader raises ValueError, IndexError, struct errors...
        raise UserInputError(f"{path}: bad GGUF header ({exc})") from exc
    if end > size:
        raise UserInputError(
            f"{path} is truncated: its tensors need {end} bytes but the file has {size}")
    return GGUFInfo(path=path, size=size, architecture=_field_str(reader, "general.architecture"),
                    name=_field_str(reader, "general.name"), tensor_count=len(reader.tensors))
