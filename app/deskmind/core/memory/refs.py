"""What a reference to sources (``deskmind forget X``, ``deskmind show X``) may mean, in the
order the backends try it: an id, a uri, then for a path its exact file or everything under it
as a folder, first as given and then through links."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from deskmind.core.memory import uris


def resolve_candidates(ref: str | int) -> Iterator[tuple[str, str | int | tuple[str, ...]]]:
    """``("id", n)``, ``("uri", text)`` and ``("prefix", (folder + "/", ...))`` (everything
    under any of these prefixes) to look up in turn; the first that matches anything is the
    answer."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        yield "id", int(ref)
    ref = str(ref)
    if not uris.not_utf8(ref):
        yield "uri", ref
    if "://" in ref:
        # A file:// URI names the file however its uri is kept (as a path, or escaped).
        local = uris.uri_path(ref) if ref.startswith(uris.FILE_SCHEME) else None
        if local is not None and uris.path_uri(local) != ref:
            yield "uri", uris.path_uri(local)
        return
    path = str(Path(ref).expanduser().absolute())
    # Files are stored under their real paths: a path through a link finds them too. A path
    # whose bytes are not UTF-8 (lone surrogates here) is kept as a file:// URI.
    for p in dict.fromkeys((path, os.path.realpath(path))):
        yield "uri", uris.path_uri(p)
        yield "prefix", tuple(prefix for _base, prefix in uris.prefixes(p))
