"""Where a memory item came from, in lines a person reads: never a Python repr.

Plain functions (no widgets). A voice note says how long it is, how many segments Whisper heard
and whether a model cleaned it up; a meeting says when, how long, and which channels (me: the
microphone, others: the computer's sound); a file says its path, whether it is still on this
computer, and what its reader found (pages, language, tags). Keys nobody described yet are
shown as "name: value" with lists joined and times as dates.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from deskmind.core.memory import uris
from deskmind.ui.tray import clock

CHANNELS = {"me": "me (microphone)", "others": "others (computer sound)"}
# Shown by the lines made for them, or only useful to the program.
_HANDLED = {"segments", "cleaned", "duration", "duration_s", "recorded_at", "started_at", "transcript",
            "audio_files", "audio_folder", "origin", "machine", "channels", "meeting_id", "warnings",
            "pages", "unreadable_pages", "language", "symbols", "tags", "front_matter", "warning",
            "reached_via", "captured_by", "via", "chunks", "extractor", "left_out"}
MAX_VALUE = 120


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "—"


def plain(value: Any, key: str = "") -> str:
    """One value as text: lists joined, tables as "k: v", times as dates, long text cut."""
    if isinstance(value, bool):
        out = "yes" if value else "no"
    elif isinstance(value, (int, float)) and (key.endswith("_at") or key in ("mtime", "date")) and value > 1e8:
        out = when(float(value))
    elif isinstance(value, float):
        out = f"{value:.2f}".rstrip("0").rstrip(".")
    elif isinstance(value, (list, tuple)):
        out = ", ".join(plain(v) for v in value)
    elif isinstance(value, dict):
        out = "; ".join(f"{k}: {plain(v, str(k))}" for k, v in value.items())
    elif value is None:
        out = "—"
    else:
        out = str(value)
    return out if len(out) <= MAX_VALUE else out[:MAX_VALUE - 1] + "…"


def file_path(uri: str) -> str | None:
    """The local path of a file:// URI (or of a bare path), else None."""
    if uri.startswith(uris.FILE_SCHEME):
        return uris.uri_path(uri)
    if uri.startswith("/") or (len(uri) > 2 and uri[1] == ":"):
        return uri
    return None


def _channels(metadata: dict[str, Any], chunks: list[tuple[int, dict, str]]) -> list[str]:
    names = list((metadata.get("channels") or {}).keys()) if isinstance(metadata.get("channels"), dict) else []
    for _id, loc, _text in chunks:
        for s in loc.get("speakers") or []:
            if s not in names:
                names.append(s)
    return names


def recording_lines(kind: str, metadata: dict[str, Any], chunks: list[tuple[int, dict, str]]) -> list[str]:
    out: list[str] = []
    duration = metadata.get("duration", metadata.get("duration_s"))
    segments = metadata.get("segments")
    n = len(segments) if isinstance(segments, list) else segments if isinstance(segments, int) else None
    head = []
    at = metadata.get("recorded_at") or metadata.get("started_at")
    if at:
        head.append(f"Recorded {when(float(at))}")
    if isinstance(duration, (int, float)):
        head.append(f"{clock(float(duration))} long")
    if n is not None:
        head.append(f"{n} segment{'s' if n != 1 else ''}")
    if head:
        out.append(" · ".join(head))
    if kind in ("note", "voice_note") and "cleaned" in metadata:
        out.append("Cleaned up by a model (the words as spoken are below it)" if metadata["cleaned"]
                   else "Raw transcript (not cleaned up)")
    chans = _channels(metadata, chunks)
    if chans:
        secs = metadata.get("channels") if isinstance(metadata.get("channels"), dict) else {}
        out.append("Channels: " + ", ".join(
            CHANNELS.get(c, c) + (f" {clock(float(secs[c]))}" if isinstance(secs.get(c), (int, float)) else "")
            for c in chans))
    if metadata.get("machine"):
        here = " (this computer)" if metadata["machine"] == socket.gethostname() else ""
        out.append(f"Recorded on {metadata['machine']}{here}")
    if metadata.get("origin"):
        out.append(f"Made from the file {metadata['origin']}")
    files = metadata.get("audio_files") or []
    if files:
        out.append("Audio: " + ", ".join(str(f) for f in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else ""))
    return out


def document_lines(metadata: dict[str, Any]) -> list[str]:
    out: list[str] = []
    facts = []
    if isinstance(metadata.get("pages"), int):
        facts.append(f"{metadata['pages']} page{'s' if metadata['pages'] != 1 else ''}")
    if metadata.get("unreadable_pages"):
        facts.append(f"unreadable pages: {plain(metadata['unreadable_pages'])}")
    if metadata.get("language"):
        facts.append(f"{metadata['language']} code" if metadata["language"] != "text" else "plain text")
    if isinstance(metadata.get("symbols"), list) and metadata["symbols"]:
        facts.append(f"{len(metadata['symbols'])} definitions")
    if facts:
        out.append(" · ".join(facts))
    if metadata.get("tags"):
        out.append("Tags: " + plain(metadata["tags"]))
    front = {k: v for k, v in (metadata.get("front_matter") or {}).items() if k != "tags"} \
        if isinstance(metadata.get("front_matter"), dict) else {}
    if front:   # its tags are on the line above
        out.append("Front matter: " + plain(front))
    if metadata.get("reached_via"):
        out.append(f"Reached through the link {uris.shown(str(metadata['reached_via']))}")
    return out


def provenance_lines(source: Any, chunks: list[tuple[int, dict, str]], original: Path | None) -> list[str]:
    """The provenance of ``source`` (a core Source) as plain-text lines, most telling first."""
    md: dict[str, Any] = source.metadata or {}
    lines: list[str] = []
    path = file_path(source.uri)
    if path is not None:
        where = "on this computer" if original is not None or os.path.exists(path) else "not found on this computer"
        lines.append(f"File: {uris.shown(path)} ({where})")
    elif source.kind in ("note", "voice_note"):
        lines.append("A voice note recorded in Deskmind")
    elif source.kind == "meeting":
        lines.append("A meeting recorded in Deskmind")
    elif source.kind == "minutes":
        lines.append("Minutes written by a model from a meeting")
    else:
        lines.append(f"From: {source.uri}")
    if md.get("captured_by"):
        lines.append(f"Saved by {md['captured_by']}" + (f" through {md['via']}" if md.get("via") else ""))
    if source.kind in ("note", "voice_note", "meeting"):
        lines += recording_lines(source.kind, md, chunks)
    else:
        lines += document_lines(md)
    n = source.chunk_count or len(chunks)
    lines.append(f"Added {when(source.created_at)}, indexed {when(source.indexed_at)}, "
                 f"{n} chunk{'s' if n != 1 else ''}, status {source.status}")
    if source.error:
        lines.append(f"Why {source.status}: {source.error}")
    for note in md.get("left_out") or ():  # a budget of Settings → Indexing cut it short
        lines.append(f"Indexed in part: {note}")  # whole: it says what to change
    for w in ([md["warning"]] if md.get("warning") else []) + list(md.get("warnings") or []):
        lines.append(f"Warning: {plain(w)}")
    extra = [f"{k.replace('_', ' ')}: {plain(v, k)}" for k, v in md.items() if k not in _HANDLED]
    if extra:
        lines.append(" · ".join(extra[:6]))
    return lines
