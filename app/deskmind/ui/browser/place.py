"""Where a citation points inside a memory item: a time in a recording, a page, lines.

Plain functions (no widgets): what the item view shows for a voice note or meeting (its lines
with their times), how a locator reads for a person, and which original file can be opened.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

from deskmind.core.memory import uris
from deskmind.ui.tray import clock

TIMED_LINE = re.compile(r"^\[(\d+):(\d{2})(?::(\d{2}))?\]")
RECORDED_KINDS = ("note", "voice_note", "meeting")


def line_time(line: str) -> int | None:
    """The whole seconds of a "[m:ss] ..." or "[h:mm:ss] ..." transcript line, else None."""
    m = TIMED_LINE.match(line)
    if m is None:
        return None
    a, b, c = m.group(1), m.group(2), m.group(3)
    return int(a) * 3600 + int(b) * 60 + int(c) if c is not None else int(a) * 60 + int(b)


def is_timed(locator: dict[str, Any] | None) -> bool:
    """A place in a recording (a Whisper segment or a meeting turn), not a cleaned-up note."""
    return bool(locator) and "start" in locator and not locator.get("cleaned")


def display_text(kind: str, text: str, metadata: dict[str, Any]) -> str:
    """What the item view shows. A voice note shows its transcript with times, under the
    cleaned-up text when there is one; a meeting's text already has its times."""
    segments = metadata.get("segments") if kind in ("note", "voice_note") else None
    if not isinstance(segments, list) or not segments:
        return text
    lines = "\n".join(f"[{clock(float(s.get('start', 0.0)))}] {str(s.get('text', '')).strip()}"
                      for s in segments)
    if metadata.get("cleaned"):
        return f"{text.strip()}\n\nAs spoken:\n{lines}"
    return lines


def timed_range(lines: list[str], start: float, end: float | None) -> tuple[int, int] | None:
    """(first, last) index of the transcript lines spoken from ``start`` until ``end`` seconds.

    Lines carry whole seconds (the clock cuts the fraction): a segment starting at 12.6 s
    reads [0:12], and one reading [0:06] may start at 6.5 s, after an end of 6.2 s, so a line
    in the end's own second is left out. Without a line inside the span, the line being
    spoken at ``start``."""
    lo = int(start)
    hi = int(end) if end is not None and end > start else lo + 1
    times = [line_time(ln) for ln in lines]
    inside = [i for i, t in enumerate(times) if t is not None and (t == lo or lo < t < hi)]
    if inside:
        return inside[0], inside[-1]
    before = [i for i, t in enumerate(times) if t is not None and t <= start]
    return (before[-1], before[-1]) if before else None


def describe(locator: dict[str, Any] | None) -> str:
    """The cited place in words, e.g. "At 0:12–0:16 in the recording" or "Page 3"."""
    loc = locator or {}
    parts = []
    if is_timed(loc):
        end = loc.get("end")
        span = clock(loc["start"]) + (f"–{clock(end)}" if end is not None and int(end) > int(loc["start"]) else "")
        who = ", ".join(loc.get("speakers") or [])
        parts.append(f"At {span} in the recording" + (f" ({who})" if who else ""))
    if "page" in loc:
        parts.append(f"Page {loc['page']}")
    if "line_start" in loc:
        a, b = loc["line_start"], loc.get("line_end", loc["line_start"])
        parts.append(f"Line {a}" if a == b else f"Lines {a}–{b}")
    if loc.get("symbol"):
        parts.append(str(loc["symbol"]))
    if loc.get("heading"):
        parts.append(" › ".join(loc["heading"]))
    return " · ".join(parts)


def where_to_open(locator: dict[str, Any] | None) -> str:
    """The place to look for once the original is open ("page 3", "line 40"), or ""."""
    loc = locator or {}
    if "page" in loc:
        return f"page {loc['page']}"
    if "line_start" in loc:
        return f"line {loc['line_start']}"
    return ""


def original_file(uri: str, kind: str, metadata: dict[str, Any]) -> Path | None:
    """The file on this computer the item came from, when it is there (worker thread): an
    indexed file, or a voice note's recording; None for what only lives in memory."""
    if kind in RECORDED_KINDS:
        files = metadata.get("audio_files") or []
        path = Path(files[0]) if kind != "meeting" and len(files) == 1 else None
    elif uri.startswith(uris.FILE_SCHEME):
        local = uris.uri_path(uri)  # the exact bytes of a name that is not UTF-8
        path = Path(local) if local is not None else None
    elif "://" in uri:
        path = None
    else:
        path = Path(uri)
    return path if path is not None and path.is_file() else None


def desktop_opener(path: Path) -> list[str] | None:
    """The command that opens ``path`` in the desktop's program for it, when Qt cannot: Qt
    turns a path into text, so a name whose bytes are not UTF-8 would reach the opener with
    U+FFFD in it and name no file. ``xdg-open`` takes the bytes as they are. None: let
    QDesktopServices open it."""
    if not uris.not_utf8(str(path)) or not sys.platform.startswith("linux"):
        return None
    opener = shutil.which("xdg-open")
    return [opener, str(path)] if opener else None
