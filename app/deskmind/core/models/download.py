"""Pulling a GGUF into the library: from an HTTPS URL (Hugging Face ``resolve`` links too) or a
local file.

Bytes go to ``NAME.gguf.part`` beside the library; an interrupted download resumes with
``Range`` + ``If-Range`` (the ETag, or Last-Modified) and restarts when the file on the server
changed. Nothing enters the library before the whole file is there, its size and sha256 (when
known) match and its GGUF header reads: otherwise the partial file is deleted and the error
says why. A cancel keeps the partial file so the next pull resumes. Each download is recorded
in the egress ledger (host and bytes; nothing from memory is sent).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.models.gguf_check import GGUFInfo, check_gguf

CHUNK = 1 << 20
FREE_MARGIN = 64 << 20  # keep this much free beyond the file itself
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


class PullCancelled(DeskmindError):
    """The person cancelled; the partial file is kept for a later resume."""


class PullInterrupted(DeskmindError):
    """The connection broke; the partial file is kept and the next pull resumes."""


@dataclass(frozen=True)
class PullResult:
    path: Path
    info: GGUFInfo
    sha256: str
    resumed_from: int  # bytes already there when this pull started


def library_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def library_path(source: str, data_dir: Path) -> Path:
    """Where :func:`pull` puts ``source`` (a URL or a file) in the library."""
    return library_dir(data_dir) / _file_name(source)


def _file_name(source: str) -> str:
    name = unquote(urlsplit(source).path.rsplit("/", 1)[-1]) if "://" in source else Path(source).name
    if not name.lower().endswith(".gguf") or name.startswith(".") or "\\" in name:
        raise UserInputError(f"{source}: not a .gguf file name ('{name}')")
    return name


def _check_space(where: Path, needed: int,
                 disk_usage: Callable[[Path], Any] = shutil.disk_usage) -> None:
    free = disk_usage(where).free
    if free < needed + FREE_MARGIN:
        raise UserInputError(
            f"not enough free space in {where}: the model needs {needed / 1e6:.0f} MB "
            f"(+{FREE_MARGIN >> 20} MB margin), {free / 1e6:.0f} MB are free")


def _finish(part: Path, dest: Path, sha256: str | None, resumed_from: int) -> PullResult:
    h = hashlib.sha256()
    with part.open("rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    digest = h.hexdigest()
    try:
        if sha256 and digest != sha256.lower():
            raise UserInputError(f"{dest.name}: sha256 {digest} does not match the expected "
                                 f"{sha256.lower()}; nothing was installed")
        info = check_gguf(part)
    except UserInputError:
        part.unlink(missing_ok=True)
        _meta(part).unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    _meta(part).unlink(missing_ok=True)
    return PullResult(dest, dataclasses.replace(info, path=dest), digest, resumed_from)


def _meta(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def pull(source: str, data_dir: Path, *, sha256: str | None = None,
         progress: Progress | None = None, cancel: threading.Event | None = None,
         ledger: Any = None, timeout: float = 30.0,
         disk_usage: Callable[[Path], Any] = shutil.disk_usage) -> PullResult:
    """Bring ``source`` (URL or local path) into the library; see the module docstring."""
    lib = library_dir(data_dir)
    lib.mkdir(parents=True, exist_ok=True)
    name = _file_name(source)
    dest = lib / name
    if dest.exists():
        raise UserInputError(f"{name} is already in the library ({dest})")
    part = lib / (name + ".part")
    if "://" not in source:
        return _copy_local(Path(source).expanduser(), part, dest, sha256, progress, cancel,
                           disk_usage)
    if urlsplit(source).scheme not in ("https", "http"):
        raise UserInputError(f"{source}: only https:// (or http://) URLs can be pulled")
    return _download(source, part, dest, sha256, progress, cancel, ledger, timeout, disk_usage)


def _copy_local(src: Path, part: Path, dest: Path, sha256, progress, cancel,
                disk_usage) -> PullResult:
    try:
        total = src.stat().st_size
    except OSError as exc:
        raise UserInputError(f"cannot read {src}: {exc.strerror or exc}") from exc
    _check_space(dest.parent, total, disk_usage)
    done = 0
    with src.open("rb") as fin, part.open("wb") as fout:
        while block := fin.read(CHUNK):
            if cancel is not None and cancel.is_set():
                fout.close()
                part.unlink(missing_ok=True)
                raise PullCancelled(f"copying {src.name} was cancelled")
            fout.write(block)
            done += len(block)
            if progress:
                progress(done, total)
    return _finish(part, dest, sha256, 0)


def _download(url: str, part: Path, dest: Path, sha256, progress, cancel, ledger, timeout,
              disk_usage) -> PullResult:
    import httpx

    meta_path = _meta(part)
    have = part.stat().st_size if part.exists() else 0
    validator = None
    if have:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            validator = meta.get("validator") if meta.get("url") == url else None
        except (OSError, ValueError):
            validator = None
        if not validator:
            have = 0
    headers = {"Accept-Encoding": "identity"}
    if have and validator:
        headers.update({"Range": f"bytes={have}-", "If-Range": validator})
    host = urlsplit(url).hostname or ""
    entry = None
    if ledger is not None:
        entry = ledger.record(provider="model-download", host=host, model=dest.name,
                              rule="models pull", body=b"", item_ids=[])
    received = 0
    status = "failed"
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client, \
                client.stream("GET", url, headers=headers) as resp:
            if resp.status_code == 206 and have:
                mode, start = "ab", have
            elif resp.status_code == 200:
                mode, start = "wb", 0
            else:
                raise UserInputError(f"{url}: the server answered HTTP {resp.status_code}")
            length = resp.headers.get("content-length")
            total = start + int(length) if length and length.isdigit() else None
            if total is not None:
                _check_space(dest.parent, total - start, disk_usage)
            new_validator = resp.headers.get("etag") or resp.headers.get("last-modified")
            meta_path.write_text(json.dumps({"url": url, "validator": new_validator}),
                                 encoding="utf-8")
            done = start
            with part.open(mode) as fh:
                try:
                    for block in resp.iter_bytes():  # as received: a cut loses nothing
                        if cancel is not None and cancel.is_set():
                            status = "cancelled"
                            raise PullCancelled(
                                f"download of {dest.name} cancelled at {done / 1e6:.1f} MB; "
                                "pull it again to resume")
                        fh.write(block)
                        done += len(block)
                        received += len(block)
                        if progress:
                            progress(done, total)
                except httpx.HTTPError as exc:
                    status = "interrupted"
                    raise PullInterrupted(
                        f"download of {dest.name} interrupted at {done / 1e6:.1f} MB ({exc}); "
                        "pull it again to resume") from exc
        if total is not None and done != total:
            status = "interrupted"
            raise PullInterrupted(f"download of {dest.name} stopped at {done} of {total} bytes; "
                                  "pull it again to resume")
        result = _finish(part, dest, sha256, start)
        status = "ok"
        return result
    except httpx.HTTPError as exc:
        raise PullInterrupted(f"cannot download {url}: {exc}; pull it again to resume") from exc
    finally:
        if entry is not None:
            ledger.finish(entry, bytes_in=received, status=status)
