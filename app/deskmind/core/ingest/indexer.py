"""Index files and folders into memory, incrementally and safely.

Per file: stat; unchanged size and mtime → nothing is read. Otherwise read and hash; an
unchanged hash → only the new mtime is recorded. Otherwise extract, chunk, embed (batched across
files, reusing vectors of text already embedded) and replace the source's chunks in one
transaction: a kill at any moment leaves the old or the new state of each file, never a mix.

Runs on the calling thread (a worker, never the GUI thread); progress goes to ``on_event``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from deskmind.core.embed.base import Embedder
from deskmind.core.errors import UserInputError
from deskmind.core.ingest.chunker import chunk_sections
from deskmind.core.ingest.types import ExtractionError, Extracted, file_type
from deskmind.core.memory.models import DEFAULT_PRIVACY, SourceDraft
from deskmind.core.memory.store import MemoryStore, text_hash

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
EMBED_BATCH_CHUNKS = 64
DEFAULT_IGNORED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".bzr", "node_modules", "__pycache__", ".venv", "venv", ".tox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".cache", "build", "dist", ".idea",
    ".gradle", "target", ".next", ".DS_Store",
})


@dataclass
class IndexEvent:
    """Progress of an indexing run. ``kind`` is scan, file, or done."""

    kind: str
    files_done: int = 0
    files_total: int = 0
    chunks: int = 0
    bytes: int = 0
    eta_s: float | None = None
    path: str | None = None
    status: str | None = None  # indexed, unchanged, skipped, failed, queued, removed
    reason: str | None = None


@dataclass
class FileOutcome:
    path: str
    kind: str | None
    status: str
    reason: str | None = None
    chunks: int = 0


@dataclass
class IndexSummary:
    outcomes: list[FileOutcome] = field(default_factory=list)
    embedded_chunks: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def by_kind(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            k = out.setdefault(o.kind or "other", {})
            k[o.status] = k.get(o.status, 0) + 1
        return out

    def to_dict(self) -> dict:
        return {
            "indexed": self.count("indexed"), "unchanged": self.count("unchanged"),
            "skipped": self.count("skipped"), "failed": self.count("failed"),
            "queued": self.count("queued"), "removed": self.count("removed"),
            "chunks": sum(o.chunks for o in self.outcomes if o.status == "indexed"),
            "embedded_chunks": self.embedded_chunks, "seconds": round(self.seconds, 3),
            "by_kind": self.by_kind(),
            "problems": [o.__dict__ for o in self.outcomes if o.status in ("skipped", "failed")],
        }


@dataclass
class _Prepared:
    path: Path
    outcome: FileOutcome
    draft: SourceDraft | None = None


class Indexer:
    def __init__(
        self,
        store: MemoryStore,
        embedder: Callable[[], Embedder] | None,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        privacy_for: Callable[[Path], str] | None = None,
        workers: int = 2,
    ) -> None:
        self.store = store
        self._embedder = embedder
        self.max_file_bytes = max_file_bytes
        self.privacy_for = privacy_for or (lambda _p: DEFAULT_PRIVACY)
        self.workers = workers

    # -- walking -----------------------------------------------------------------------

    def _walk(self, root: Path, report: Callable[[FileOutcome], None]) -> Iterator[tuple[Path, os.stat_result]]:
        seen_dirs: set[tuple[int, int]] = set()
        stack = [root]
        while stack:
            d = stack.pop()
            try:
                st = d.stat()
                key = (st.st_dev, st.st_ino)
                if key in seen_dirs:  # a symlink loop, or the same folder twice
                    report(FileOutcome(str(d), None, "skipped", "symlink loop: folder already visited"))
                    continue
                seen_dirs.add(key)
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except PermissionError:
                report(FileOutcome(str(d), None, "failed", "permission denied: cannot list folder"))
                continue
            except OSError as exc:
                report(FileOutcome(str(d), None, "failed", f"cannot list folder: {exc.strerror or exc}"))
                continue
            subdirs = []
            for e in entries:
                try:
                    if e.is_dir():
                        if e.name in DEFAULT_IGNORED_DIRS:
                            continue
                        subdirs.append(Path(e.path))
                    elif e.is_file():
                        yield Path(e.path), e.stat()
                    elif e.is_symlink():
                        report(FileOutcome(e.path, None, "skipped", "broken symbolic link"))
                except OSError as exc:
                    report(FileOutcome(e.path, None, "failed", f"cannot stat: {exc.strerror or exc}"))
            stack.extend(reversed(subdirs))

    # -- per file ----------------------------------------------------------------------

    def _prepare(self, path: Path, st: os.stat_result, known: tuple | None) -> _Prepared:
        ft = file_type(path)
        kind = ft.kind if ft else None
        uri = str(path)
        if ft is None:
            return _Prepared(path, FileOutcome(uri, None, "skipped", "unsupported file type"))
        if known and known[4] == "indexed" and known[1] == st.st_size and known[2] == st.st_mtime:
            return _Prepared(path, FileOutcome(uri, kind, "unchanged"))
        if st.st_size > self.max_file_bytes:
            return _Prepared(path, FileOutcome(
                uri, kind, "skipped",
                f"too large: {st.st_size / 1e6:.1f} MB, over the {self.max_file_bytes / 1e6:.0f} MB limit"))
        try:
            with open(path, "rb") as fh:
                data = fh.read(self.max_file_bytes + 1)
        except PermissionError:
            return _Prepared(path, FileOutcome(uri, kind, "failed", "permission denied"))
        except FileNotFoundError:
            return _Prepared(path, FileOutcome(uri, kind, "failed", "file vanished while being read"))
        except OSError as exc:
            return _Prepared(path, FileOutcome(uri, kind, "failed", f"read error: {exc.strerror or exc}"))
        if len(data) > self.max_file_bytes:
            return _Prepared(path, FileOutcome(uri, kind, "skipped", "grew past the size limit while being read"))
        digest = hashlib.sha256(data).hexdigest()
        if known and known[3] == digest and known[4] == "indexed":
            self.store.touch_source(known[0], st.st_size, st.st_mtime)
            return _Prepared(path, FileOutcome(uri, kind, "unchanged"))
        if not data:
            return _Prepared(path, FileOutcome(uri, kind, "skipped", "empty file"))
        try:
            ex: Extracted = ft.extractor(path, data)
        except ExtractionError as exc:
            return _Prepared(path, FileOutcome(uri, kind, "failed", str(exc)))
        except Exception as exc:  # a parser bug must not stop the batch
            log.exception("extractor failed on %s", path)
            return _Prepared(path, FileOutcome(uri, kind, "failed", f"could not parse: {exc}"))
        chunks = chunk_sections(ex.sections, presplit=ex.presplit)
        if not chunks:
            return _Prepared(path, FileOutcome(uri, kind, "skipped", "no text found in file"))
        try:
            now_st = path.stat()
            if now_st.st_mtime != st.st_mtime or now_st.st_size != st.st_size:
                return _Prepared(path, FileOutcome(uri, kind, "failed", "changed while being read; will retry on next scan"))
        except OSError:
            return _Prepared(path, FileOutcome(uri, kind, "failed", "file vanished while being read"))
        draft = SourceDraft(
            uri=uri, kind=kind, title=ex.title, content_hash=digest, size=st.st_size,
            mtime=st.st_mtime, privacy=self.privacy_for(path), metadata=ex.metadata,
            text=ex.text, extractor=ex.extractor, chunks=chunks,
        )
        return _Prepared(path, FileOutcome(uri, kind, "indexed", chunks=len(chunks)), draft)

    # -- the run -----------------------------------------------------------------------

    def index(
        self,
        paths: Iterable[Path | str],
        on_event: Callable[[IndexEvent], None] | None = None,
        cancel: threading.Event | None = None,
        remove_missing: bool = True,
    ) -> IndexSummary:
        t0 = time.perf_counter()
        emit = on_event or (lambda _e: None)
        summary = IndexSummary()
        roots = [Path(p).expanduser().absolute() for p in paths]
        for r in roots:
            if not r.exists() and not r.is_symlink():
                raise UserInputError(f"no such file or folder: {r}")

        def report(o: FileOutcome) -> None:
            summary.outcomes.append(o)
            self._record(o)

        files: list[tuple[Path, os.stat_result]] = []
        for root in roots:
            if root.is_dir():
                files.extend(self._walk(root, report))
            else:
                try:
                    files.append((root, root.stat()))
                except OSError as exc:
                    report(FileOutcome(str(root), None, "failed", f"cannot stat: {exc.strerror or exc}"))
        emit(IndexEvent("scan", files_total=len(files)))
        known: dict[str, tuple] = {}
        for root in roots:
            known.update(self.store.source_states(str(root)))
        total_bytes = sum(st.st_size for _, st in files)
        done_bytes = 0
        pending: list[_Prepared] = []
        pending_chunks = 0

        def flush() -> None:
            nonlocal pending, pending_chunks
            summary.embedded_chunks += self._store_batch(pending)
            pending, pending_chunks = [], 0

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="deskmind-parse") as pool:
            prepared = pool.map(lambda f: self._prepare(f[0], f[1], known.get(str(f[0]))), files)
            for n, prep in enumerate(prepared, 1):
                if cancel is not None and cancel.is_set():
                    break
                done_bytes += files[n - 1][1].st_size
                if prep.draft is not None:
                    pending.append(prep)
                    pending_chunks += len(prep.draft.chunks)
                    if pending_chunks >= EMBED_BATCH_CHUNKS:
                        flush()
                else:
                    if prep.outcome.status != "unchanged":
                        self._record(prep.outcome)
                summary.outcomes.append(prep.outcome)
                elapsed = time.perf_counter() - t0
                eta = elapsed / done_bytes * (total_bytes - done_bytes) if done_bytes else None
                emit(IndexEvent("file", files_done=n, files_total=len(files),
                                chunks=sum(o.chunks for o in summary.outcomes),
                                bytes=done_bytes, eta_s=eta, path=prep.outcome.path,
                                status=prep.outcome.status, reason=prep.outcome.reason))
            if cancel is not None and cancel.is_set():
                pool.shutdown(cancel_futures=True)
        flush()
        if remove_missing and not (cancel is not None and cancel.is_set()):
            present = {str(p) for p, _ in files}
            for root in roots:
                if root.is_dir():
                    for uri, state in self.store.source_states(str(root)).items():
                        if uri not in present and not os.path.lexists(uri):
                            self.store.forget_ids([state[0]])
                            summary.outcomes.append(FileOutcome(uri, None, "removed", "file no longer exists"))
        summary.seconds = time.perf_counter() - t0
        emit(IndexEvent("done", files_done=len(files), files_total=len(files),
                        chunks=sum(o.chunks for o in summary.outcomes), bytes=done_bytes))
        return summary

    def _record(self, o: FileOutcome) -> None:
        if o.status in ("skipped", "failed", "queued"):
            try:
                self.store.mark_source(o.path, o.kind or "other", o.status, o.reason)
            except Exception:
                log.exception("could not record the status of %s", o.path)

    def _store_batch(self, batch: list[_Prepared]) -> int:
        """Embed what needs embedding for a batch of drafts, then store each draft."""
        if not batch:
            return 0
        idx = None
        vectors: dict[str, np.ndarray] = {}
        if self._embedder is not None:
            emb = self._embedder()
            idx = self.store.ensure_active_index(emb.model_id, emb.dim)
            texts: dict[str, str] = {}
            for p in batch:
                for ch in p.draft.chunks:
                    texts.setdefault(text_hash(ch.text), ch.text)
            reuse = self.store.reusable_vectors(idx, texts)
            todo = [(h, t) for h, t in texts.items() if h not in reuse]
            if todo and emb.model_id == idx.model_id:
                mat = emb.embed([t for _, t in todo])
                vectors = {h: v for (h, _), v in zip(todo, mat)}
            elif todo:
                log.info("active index is for %s; %d chunks wait for 'deskmind reembed'",
                         idx.model_id, len(todo))
        embedded = len(vectors)
        for p in batch:
            try:
                self.store.put_source(p.draft, idx, vectors)
            except Exception as exc:
                log.error("could not store %s: %s", p.path, exc)
                p.outcome.status, p.outcome.reason = "failed", str(exc)
                p.outcome.chunks = 0
                if "full" in str(exc).lower():
                    raise
        return embedded
