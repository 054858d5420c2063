"""Walk folders for indexing: ignore rules, vault collections, symlink loops, odd files.

Yields regular files with their stat result and their real path (no symbolic link in it: the
identity of a source, and what privacy rules are matched against); everything passed over is
reported with a reason, under the path as reached (ignored files only counted, they are not
worth a status row each).
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from deskmind.core.ingest.ignore import IgnoreRules
from deskmind.core.ingest.links import VAULT_MARKER


@dataclass
class Found:
    path: Path  # real: symbolic links resolved
    st: os.stat_result
    vault: Path | None
    via: Path | None = None  # the path as reached, when a symbolic link led there


@dataclass
class Passed:
    """A path not indexed: ``status`` is ignored (count only), skipped or failed.

    ``listed``: whether it is kept in the source list with its status. What is not a regular
    file (a FIFO, a socket, a device, a broken link, a second way into a folder) is reported
    in the run's outcomes only: it is no source, and a source once kept at its path goes."""

    path: str
    status: str
    reason: str
    listed: bool = True


def describe_special(mode: int) -> str:
    for test, name in ((stat_mod.S_ISFIFO, "a FIFO (named pipe)"), (stat_mod.S_ISSOCK, "a socket"),
                       (stat_mod.S_ISCHR, "a character device"), (stat_mod.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


NOT_A_FILE = "not a regular file"


def not_a_file(mode: int) -> str:
    """The reason given for a path that is not a regular file ("not a regular file: a FIFO ...")."""
    return f"{NOT_A_FILE}: {describe_special(mode)}"


def walk(root: Path, extra_ignore: list[str], report: Callable[[Passed], None],
         vault: Path | None = None) -> Iterator[Found]:
    """Files under ``root``, depth first in name order; folders reached twice (a symlink loop,
    or two links to one folder) are walked once.

    Ignore files apply to paths as reached (as Git reads them); real paths cost a ``realpath``
    only where scandir says an entry is a symbolic link, since below a real folder an entry
    that is no link is real too."""
    seen: dict[tuple[int, int], Path] = {}
    Item = tuple[Path, Path, IgnoreRules, "Path | None", frozenset]
    real_root = Path(os.path.realpath(root))
    stack: list[Item] = [(root, real_root, IgnoreRules(root, list(extra_ignore)), vault, frozenset())]
    while stack:
        d, real_d, rules, vault, ancestors = stack.pop()
        try:
            st = os.stat(d)
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                report(Passed(str(d), "skipped", "symlink loop: the link leads back into a folder above it",
                              listed=False))
                continue
            if key in seen:
                # Name the link, not the real folder, whichever of the two came first.
                link, other = (seen[key], d) if d == real_d and seen[key] != real_d else (d, seen[key])
                report(Passed(str(link), "skipped", f"same folder as {other} (a symbolic link): indexed once",
                              listed=False))
                continue
            seen[key] = d
            ancestors = ancestors | {key}
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            report(Passed(str(d), "failed", "permission denied: cannot list folder"))
            continue
        except OSError as exc:
            report(Passed(str(d), "failed", f"cannot list folder: {exc.strerror or exc}"))
            continue
        names = {e.name for e in entries}
        rules = rules.child(d, names)
        if VAULT_MARKER in names and os.path.isdir(os.path.join(d, VAULT_MARKER)):
            vault = real_d
        subdirs = []
        for e in entries:
            p = Path(e.path)
            try:
                if e.is_dir():  # follows symlinks; loops are caught by ``seen``
                    if rules.dir_ignored(p):
                        report(Passed(e.path, "ignored", "ignored folder"))
                    else:
                        real = Path(os.path.realpath(p)) if e.is_symlink() else real_d / e.name
                        subdirs.append((p, real, rules, vault, ancestors))
                    continue
                reason = rules.file_reason(p)
                if reason:
                    report(Passed(e.path, "ignored", reason))
                    continue
                if e.is_file():
                    real = Path(os.path.realpath(p)) if e.is_symlink() else real_d / e.name
                    yield Found(real, e.stat(), vault, None if real == p else p)
                elif e.is_symlink():
                    if not os.path.exists(e.path):
                        report(Passed(e.path, "skipped", "broken symbolic link (or a link loop)", listed=False))
                    else:
                        report(Passed(e.path, "skipped", not_a_file(os.stat(e.path).st_mode), listed=False))
                else:
                    # Only stat: opening a FIFO would block until someone writes to it.
                    report(Passed(e.path, "skipped", not_a_file(e.stat(follow_symlinks=False).st_mode),
                                  listed=False))
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    report(Passed(e.path, "skipped", "symlink loop: the link leads back to itself", listed=False))
                else:
                    report(Passed(e.path, "failed", f"cannot stat: {exc.strerror or exc}"))
        stack.extend(reversed(subdirs))
