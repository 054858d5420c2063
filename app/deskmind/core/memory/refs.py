"""What a reference to sources (``deskmind forget X``, ``deskmind show X``) may mean, in the
order the backends try it: an id, a uri, then for a path its exact file or everything under it
as a folder, first as given and then through links."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator


def resolve_candidates(ref: str | int) -> Iterator[tuple[str, str | int]]:
    """``("id", n)``, ``("uri", text)`` and ``("prefix", folder + "/")`` to look up in turn;
    the first that matches anything is the answer."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        yield "id", int(ref)
    ref = str(ref)
    yield "uri", ref
    if "://" in ref:
        return
    path = str(Path(ref).expanduser().absolute())
    # Files are stored under their real paths: a path through a link finds them too.
    for p in dict.fromkeys((path, os.path.realpath(path))):
        yield "uri", p
        yield "prefix", p.rstrip("/") + "/"
