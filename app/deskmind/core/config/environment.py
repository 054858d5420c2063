"""Keep what libraries write under Deskmind's own folders, not scattered through ``$HOME``.

Some libraries Deskmind loads write state of their own as they are imported or first used:
onnxruntime (1.2x and later) keeps a device id and a telemetry database under
``$HOME/.cache/Microsoft/DeveloperTools/`` unless ``ORT_DISABLE_TELEMETRY`` is set;
huggingface_hub (under faster-whisper) keeps a cache and a token folder under
``$HOME/.cache/huggingface``; numba and matplotlib, when something pulls them in, write caches
and config under ``$HOME`` too. Each reads an environment variable, and only when it is
imported, so :func:`keep_writes_home` runs first thing in every entry point (the command line,
and with it the tray app and the gateway), and child processes inherit what it set.

A variable the person has set is left alone: it is their choice where that library writes.
``XDG_*`` variables are not touched: programs Deskmind starts for people (the file opener, an
editor) must see the desktop's own folders.
"""

from __future__ import annotations

import os
from typing import MutableMapping

from deskmind.core.config.paths import Paths

# variable -> the folder under Deskmind's cache it points at
_CACHES = {
    "HF_HOME": "huggingface",
    "NUMBA_CACHE_DIR": "numba",
    "MPLCONFIGDIR": "matplotlib",
}
_SWITCHES = {
    # onnxruntime: no device id, no telemetry store, nothing sent.
    "ORT_DISABLE_TELEMETRY": "1",
    # huggingface_hub: no usage reports (models come from local files anyway).
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def keep_writes_home(paths: Paths, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Point the libraries above at folders under ``paths.cache_dir``; returns what was set.
    Must run before onnxruntime, huggingface_hub, numba or matplotlib is imported. Creates
    no folder: each library makes its own when it first writes."""
    env = os.environ if environ is None else environ
    chosen: dict[str, str] = {}
    for name, value in _SWITCHES.items():
        if name not in env:
            env[name] = chosen[name] = value
    for name, sub in _CACHES.items():
        if name not in env:
            env[name] = chosen[name] = str(paths.cache_dir / sub)
    return chosen
