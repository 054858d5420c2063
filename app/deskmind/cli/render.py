"""Terminal output helpers: JSON printing and a progress bar on stderr."""

from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Any

from deskmind.core.memory import uris


def print_json(obj: Any) -> None:
    """Print obj as JSON that is always valid UTF-8: a file name that was not UTF-8 on disk
    (its undecodable bytes held as lone surrogates) shows with U+FFFD in their place."""
    text = json.dumps(obj, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write(uris.replace_undecodable(text) + "\n")


class Progress:
    """The indexing progress bar on stderr: files, megabytes, chunks and time left, on one
    self-updating line; silent when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last = 0.0
        self._shown = False

    def update(self, ev: Any) -> None:
        if not self.enabled or ev.kind != "file":
            return
        now = time.monotonic()
        if now - self._last < 0.1 and ev.files_done != ev.files_total:
            return
        self._last = now
        width = max(10, min(30, shutil.get_terminal_size().columns - 75))
        frac = ev.files_done / ev.files_total if ev.files_total else 1.0
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta = f" ETA {ev.eta_s:.0f}s" if ev.eta_s is not None and ev.files_done < ev.files_total else ""
        sys.stderr.write(f"\r[{bar}] {ev.files_done}/{ev.files_total} files, "
                         f"{ev.bytes / 1e6:.1f}/{ev.bytes_total / 1e6:.1f} MB, {ev.chunks} chunks{eta}   ")
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
