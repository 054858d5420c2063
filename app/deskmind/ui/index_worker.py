"""The indexing child process: ``python -m deskmind.ui.index_worker DATA CONFIG CACHE PATH...``.

Indexing is mostly Python work (walking, extracting, chunking) that holds the GIL for long
stretches; run in threads of the GUI process it stalled the event loop for ~400 ms on a busy
2-core machine. In its own process, at low priority, it cannot. Progress goes to stdout as JSON
lines (``{"event": ...}``, then ``{"summary": ...}`` or ``{"error": ...}``); a line ``cancel``
on stdin asks it to stop (within a second: a parser process busy with a file is killed). No Qt
here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from deskmind.core.memory import uris


def _emit(obj: dict) -> None:
    """One JSON line; a path whose bytes are not UTF-8 goes with U+FFFD in their place, as
    the app shows it (a lone surrogate would fail on its way into a Qt string)."""
    text = uris.replace_undecodable(json.dumps(obj, ensure_ascii=False))
    sys.stdout.buffer.write(text.encode("utf-8") + b"\n")
    sys.stdout.flush()


def _watch_stdin(cancel: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "cancel":
            cancel.set()
            return
    cancel.set()  # the app went away: stop too


def main(argv: list[str]) -> int:
    from deskmind.core.app import Core
    from deskmind.core.config.paths import Paths
    from deskmind.core.errors import DeskmindError
    from deskmind.core.secrets import configure_logging

    from deskmind.core.config.environment import keep_writes_home

    data, config, cache, *paths = argv
    paths_here = Paths(Path(data), Path(config), Path(cache))
    keep_writes_home(paths_here)  # before the embedder imports onnxruntime
    try:
        os.nice(10)  # the person's foreground work first
    except OSError:
        pass
    configure_logging(logging.WARNING)
    cancel = threading.Event()
    threading.Thread(target=_watch_stdin, args=(cancel,), daemon=True).start()
    try:
        with Core(paths_here) as core:
            summary = core.indexer().index(paths, on_event=lambda e: _emit({"event": asdict(e)}),
                                           cancel=cancel)
            d = summary.to_dict()
            d["cancelled"] = cancel.is_set()
            _emit({"summary": d})
    except DeskmindError as exc:
        _emit({"error": str(exc)})
        return 1
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # The app learns the run is over when this process ends. Everything is stored and closed by
    # now; tearing down the interpreter (onnxruntime, numpy, parsers) would take another ~0.3 s
    # of CPU, seconds at low priority on a busy machine, so a stop would seem slow.
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
