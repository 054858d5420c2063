"""Index files and folders into memory, incrementally and safely.

Per file: stat; unchanged size and mtime -> nothing is read. Otherwise read and hash; an
unchanged hash -> only the new mtime is recorded. Otherwise extract, chunk, embed (batched across
files, reusing vectors of text already embedded) and replace the source's chunks in one
transaction: a kill at any moment leaves the old or the new state of each file, never a mix.
New content that yields nothing to index (empty, binary, undecodable) removes the old chunks;
a failed read (permission denied, the file vanished or changed while read) keeps them.

Threads: ``index`` runs on the calling thread (a worker, never the GUI thread), which embeds
and stores; reading and parsing run on a small pool beside it. Progress goes to ``on_event``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as stat_mod
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from deskmind.core.embed.base import Embedder
from deskmind.core.errors import UserInputError
from deskmind.core.ingest import links as links_mod
from deskmind.core.ingest import status as status_mod
from deskmind.core.ingest import transcribe
from deskmind.core.ingest.chunker import chunk_sections
from deskmind.core.ingest.ignore import default_reason
from deskmind.core.ingest.outcomes import FileOutcome, IndexEvent, IndexSummary, Prepared
from deskmind.core.ingest.privacy import PrivacyRules
from deskmind.core.ingest.types import DamagedFile, ExtractionError, Extracted, FileTypes, Unsupported
from deskmind.core.ingest.walk import Found, Passed, describe_special, walk
from deskmind.core.memory.models import DEFAULT_PRIVACY, SourceDraft
from deskmind.core.memory.store import MemoryStore, text_hash

__all__ = ["Indexer", "IndexEvent", "IndexSummary", "FileOutcome"]

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_MEDIA_BYTES = 4096 * 1024 * 1024
EMBED_BATCH_CHUNKS = 64
IN_FLIGHT = 32  # files being read/parsed ahead of the embedder: bounds memory on big trees
_USE_REGISTRY = object()


class Indexer:
    """Indexes files under their real paths (symbolic links resolved); ``privacy_for`` is
    called with real paths."""

    def __init__(
        self,
        store: MemoryStore,
        embedder: Callable[[], Embedder] | None,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_media_bytes: int = DEFAULT_MAX_MEDIA_BYTES,
        privacy_for: Callable[[Path], str] | None = None,
        ignore: Iterable[str] = (),
        transcriber: Any = _USE_REGISTRY,
        workers: int = 2,
        file_types: FileTypes | None = None,
    ) -> None:
        self.store = store
        self._embedder = embedder
        self.max_file_bytes = max_file_bytes
        self.max_media_bytes = max_media_bytes
        self.privacy_for = privacy_for or (lambda _p: DEFAULT_PRIVACY)
        self.ignore = list(ignore)
        self._transcriber = transcriber
        self.workers = workers
        if file_types is None:
            from deskmind.core.ingest.extractors import builtin_file_types

            file_types = builtin_file_types()
        self.file_types = file_types
        self._timing_lock = threading.Lock()
        self._parse_s = 0.0

    @classmethod
    def for_settings(cls, store: MemoryStore, embedder: Callable[[], Embedder] | None,
                     settings: Any, transcriber: Any = _USE_REGISTRY,
                     file_types: FileTypes | None = None) -> "Indexer":
        """An indexer configured by ``settings.ingest`` (an IngestSettings)."""
        return cls(
            store, embedder, transcriber=transcriber, file_types=file_types,
            max_file_bytes=int(settings.max_file_mb * 1024 * 1024),
            max_media_bytes=int(settings.max_media_mb * 1024 * 1024),
            privacy_for=PrivacyRules.from_settings(settings.privacy_rules, settings.default_privacy),
            ignore=settings.ignore,
        )

    @property
    def transcriber(self) -> transcribe.Transcriber | None:
        if self._transcriber is _USE_REGISTRY:
            return transcribe.get_transcriber()
        return self._transcriber

    # -- deciding what needs work (calling thread: must stay cheap) -----------------------

    def _triage(self, f: Found, known: status_mod.Known | None, collection: str | None,
                tags: list[tuple[int, str, str | None]]) -> FileOutcome | None:
        """An outcome when the file needs no reading, else None."""
        uri = str(f.path)
        ft = self.file_types.lookup(f.path)
        kind = ft.kind if ft else None
        limit = (self.max_media_bytes if ft.media else self.max_file_bytes) if ft else 0
        same = known is not None and known.size == f.st.st_size and known.mtime == f.st.st_mtime
        if same:
            why = known.error or ""
            # A skip stands while its reason does: a raised size cap or a newly supported type
            # gets the file read even though it did not change (bytes sniffed as not text stay
            # so while they do not change).
            stale_skip = known.status == "skipped" and (
                (why.startswith("too large") and f.st.st_size <= limit)
                or (why.startswith("unsupported") and ft is not None and "and not text" not in why))
            unchanged = (known.status in ("indexed", "failed") or (known.status == "skipped" and not stale_skip)
                         or (known.status == "queued" and self.transcriber is None))
            if unchanged:
                privacy = self.privacy_for(f.path)
                if known.status == "indexed" and (known.privacy != privacy or known.collection != collection):
                    tags.append((known.id, privacy, collection))
                return FileOutcome(uri, kind, "unchanged")
        if ft is None:
            return FileOutcome(uri, None, "skipped", f"unsupported file type ({f.path.suffix or 'no extension'})")
        if f.st.st_size > limit:
            return FileOutcome(uri, kind, "skipped",
                               f"too large: {_mb(f.st.st_size)} MB, over the {_mb(limit)} MB limit "
                               "(settings: [ingest] max_file_mb)")
        if ft.media and self.transcriber is None:
            return FileOutcome(uri, kind, "queued", transcribe.NO_TRANSCRIBER)
        return None

    # -- per file (pool threads) ----------------------------------------------------------

    def _prepare(self, f: Found, known: status_mod.Known | None, collection: str | None) -> Prepared:
        t0 = time.perf_counter()
        try:
            return self._prepare_inner(f, known, collection)
        except Exception as exc:  # a bug in a parser or a library must not stop the batch
            log.exception("unexpected error on %s", f.path)
            return Prepared(f.path, FileOutcome(str(f.path), None, "failed", f"unexpected error: {exc}"))
        finally:
            with self._timing_lock:
                self._parse_s += time.perf_counter() - t0

    def _prepare_inner(self, f: Found, known: status_mod.Known | None, collection: str | None) -> Prepared:
        path, uri = f.path, str(f.path)
        ft = self.file_types.lookup(path)
        kind = ft.kind

        def fail(status: str, reason: str) -> Prepared:
            return Prepared(path, FileOutcome(uri, kind, status, reason))

        try:
            # O_NONBLOCK: a FIFO swapped in after the scan must not hang the worker.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except PermissionError:
            return fail("failed", "permission denied")
        except FileNotFoundError:
            return fail("failed", "file vanished before it could be read")
        except OSError as exc:
            return fail("failed", f"read error: {exc.strerror or exc}")
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                return fail("skipped", f"not a regular file: {describe_special(st.st_mode)}")
            if ft.media:
                digest = transcribe.media_fingerprint(fd, st.st_size)
                data = b""
            else:
                with os.fdopen(os.dup(fd), "rb") as fh:
                    data = fh.read(self.max_file_bytes + 1)
                digest = hashlib.sha256(data).hexdigest()
        except OSError as exc:
            return fail("failed", f"read error: {exc.strerror or exc}")
        finally:
            os.close(fd)
        if not ft.media and len(data) > self.max_file_bytes:
            return fail("skipped", "grew past the size limit while being read")
        if known and known.content_hash == digest and known.status == "indexed":
            return Prepared(path, FileOutcome(uri, kind, "unchanged"), touch=(known.id, st.st_size, st.st_mtime))
        # From here on an indexed source's content has changed. Where the new content itself
        # yields nothing to index, what was stored no longer says what the file says.
        changed = known is not None and known.status == "indexed"

        def nothing(status: str, reason: str) -> Prepared:
            prep = fail(status, reason)
            prep.replaced = digest if changed else None
            return prep

        if not ft.media and not data:
            return nothing("skipped", "empty file (zero bytes)")
        try:
            if ft.media:
                try:
                    segments = list(self.transcriber(path))  # type: ignore[misc]
                except (ExtractionError, MemoryError):
                    raise
                except Exception as exc:  # decoders raise their own types on bad media
                    log.warning("could not transcribe %s: %s", path, exc)
                    raise ExtractionError(f"could not transcribe: {type(exc).__name__}: {exc}") from exc
                ex: Extracted = transcribe.transcript_to_extracted(path, segments, "speech")
            else:
                ex = ft.extractor(path, data)
        except Unsupported as exc:
            return nothing("skipped", str(exc))
        except DamagedFile as exc:
            # Broken or cut off (a copy or download under way?): the last good text stays.
            return fail("failed", str(exc))
        except ExtractionError as exc:
            # A transcriber may fail for reasons of its own (a missing model): media keeps its
            # transcript then. A text extractor's error is about the bytes it was given.
            return fail("failed", str(exc)) if ft.media else nothing("failed", str(exc))
        except MemoryError:
            return fail("failed", "too complex to parse in memory")
        except RecursionError:
            return fail("failed", "too deeply nested to parse")
        except Exception as exc:
            log.exception("extractor failed on %s", path)
            return fail("failed", f"could not parse: {type(exc).__name__}: {exc}")
        chunks = chunk_sections(ex.sections, presplit=ex.presplit)
        if not chunks:
            return nothing("skipped", "no text found in file" if not ft.media else "no speech found")
        try:
            now = os.stat(path)
        except OSError:
            return fail("failed", "file vanished while being read; will retry on next scan")
        if now.st_mtime != st.st_mtime or now.st_size != st.st_size or now.st_ino != st.st_ino:
            return fail("failed", "changed while being read; will retry on next scan")
        metadata = dict(ex.metadata)
        if f.via is not None:
            metadata["reached_via"] = str(f.via)  # the link it was reached through (see _remove_missing)
        draft = SourceDraft(
            uri=uri, kind=kind, title=ex.title, content_hash=digest, size=st.st_size,
            mtime=st.st_mtime, privacy=self.privacy_for(path), collection=collection,
            metadata=metadata, text=ex.text, extractor=ex.extractor, chunks=chunks,
        )
        return Prepared(path, FileOutcome(uri, kind, "indexed", chunks=len(chunks)), draft, links=ex.links)

    # -- the run --------------------------------------------------------------------------

    def index(
        self,
        paths: Iterable[Path | str],
        on_event: Callable[[IndexEvent], None] | None = None,
        cancel: threading.Event | None = None,
        remove_missing: bool = True,
    ) -> IndexSummary:
        t0 = time.perf_counter()
        self._parse_s = 0.0
        emit = on_event or (lambda _e: None)
        summary = IndexSummary()
        given = [Path(os.path.abspath(os.path.expanduser(str(p)))) for p in paths]
        for r in given:
            if not os.path.lexists(r):
                raise UserInputError(f"no such file or folder: {r}")
        # Sources are known by their real paths: a file reached through a symbolic link is the
        # same source, with its real folder's privacy tag, as the file reached directly.
        roots = [Path(os.path.realpath(r)) for r in given]
        records: list[status_mod.StatusRecord] = []
        ignored: set[str] = set()
        ignored_reasons: Counter[str] = Counter()
        reported: set[str] = set()

        def passed(p: Passed) -> None:
            if p.status == "ignored":
                ignored.add(p.path)
                ignored_reasons[p.reason] += 1
                return
            reported.add(p.path)
            o = FileOutcome(p.path, None, p.status, p.reason)
            summary.outcomes.append(o)
            records.append(status_mod.StatusRecord(p.path, "other", p.status, p.reason,
                                                   privacy=self.privacy_for(Path(os.path.realpath(p.path)))))

        found: list[Found] = []
        for spelled, root in zip(given, roots):
            if os.path.isdir(root):
                found.extend(walk(root, self.ignore, passed, links_mod.vault_root(root)))
                continue
            # A file named explicitly is read unless it is a secret or a binary by name.
            reason = default_reason(spelled.name) or default_reason(root.name)
            if reason:
                passed(Passed(str(root), "skipped", f"ignored: {reason}"))
                continue
            try:
                st = os.stat(root)
            except OSError as exc:
                passed(Passed(str(root), "failed", f"cannot stat: {exc.strerror or exc}"))
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                passed(Passed(str(root), "skipped", f"not a regular file: {describe_special(st.st_mode)}"))
                continue
            found.append(Found(root, st, links_mod.vault_root(root), None if spelled == root else spelled))
        files = _one_per_real_path(found, passed)
        summary.timings["scan"] = time.perf_counter() - t0
        emit(IndexEvent("scan", files_total=len(files)))

        known = status_mod.known_states(self.store, [str(r) for r in roots])
        # Files outside every root, reached through a link inside one.
        outside = [str(f.path) for f in files if f.via is not None and str(f.path) not in known]
        known.update(status_mod.known_by_uri(self.store, outside))
        vaults: dict[Path, str] = {}
        for f in files:
            if f.vault is not None and f.vault not in vaults:
                vaults[f.vault] = links_mod.ensure_collection(self.store, f.vault)

        tags: list[tuple[int, str, str | None]] = []
        touches: list[tuple[int, int, float]] = []
        work_bytes = sum(f.st.st_size for f in files)
        state = {"done": 0, "bytes": 0, "chunks": 0}
        pending: list[Prepared] = []
        pending_chunks = 0

        def progress(f: Found, o: FileOutcome) -> None:
            state["done"] += 1
            state["bytes"] += f.st.st_size
            state["chunks"] += o.chunks
            elapsed = time.perf_counter() - t0
            eta = (elapsed / state["bytes"] * (work_bytes - state["bytes"])) if state["bytes"] else None
            emit(IndexEvent("file", files_done=state["done"], files_total=len(files),
                            chunks=state["chunks"], bytes=state["bytes"], bytes_total=work_bytes,
                            eta_s=eta, path=o.path, status=o.status, reason=o.reason))

        def settle(f: Found, o: FileOutcome, replaced: str | None = None, stale: bool = False) -> None:
            summary.outcomes.append(o)
            if o.status in ("skipped", "failed", "queued"):
                records.append(status_mod.StatusRecord(
                    o.path, o.kind or "other", o.status, o.reason, f.st.st_size, f.st.st_mtime,
                    self.privacy_for(f.path), vaults.get(f.vault) if f.vault else None,
                    drop_content=stale or replaced is not None, content_hash=replaced))
                if len(records) >= 500:
                    flush_records()
            progress(f, o)

        def flush_records() -> None:
            status_mod.record_statuses(self.store, records)
            records.clear()

        def flush() -> None:
            nonlocal pending, pending_chunks
            summary.embedded_chunks += self._store_batch(pending, summary)
            pending, pending_chunks = [], 0
            flush_records()  # statuses show up in `deskmind sources` while a long run goes on

        cancelled = lambda: cancel is not None and cancel.is_set()  # noqa: E731
        in_flight: deque[tuple[Found, Future[Prepared]]] = deque()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="deskmind-parse") as pool:
            def drain(limit: int) -> None:
                nonlocal pending_chunks
                while len(in_flight) > limit and not cancelled():
                    f, fut = in_flight.popleft()
                    prep = fut.result()
                    if prep.touch:
                        touches.append(prep.touch)
                    if prep.draft is not None:
                        pending.append(prep)
                        pending_chunks += len(prep.draft.chunks)
                        summary.outcomes.append(prep.outcome)
                        progress(f, prep.outcome)
                        if pending_chunks >= EMBED_BATCH_CHUNKS:
                            flush()
                    else:
                        settle(f, prep.outcome, prep.replaced)

            for f in files:
                if cancelled():
                    break
                coll = vaults.get(f.vault) if f.vault else None
                k = known.get(str(f.path))
                quick = self._triage(f, k, coll, tags)
                if quick is not None:
                    # An indexed file that grew past the size cap: its stored content is stale.
                    grew = (quick.status == "skipped" and (quick.reason or "").startswith("too large")
                            and k is not None and k.status == "indexed" and k.size != f.st.st_size)
                    settle(f, quick, stale=grew)
                    continue
                in_flight.append((f, pool.submit(self._prepare, f, k, coll)))
                drain(IN_FLIGHT)
            drain(0)
            if cancelled():
                for _, fut in in_flight:
                    fut.cancel()
        flush()
        flush_records()
        status_mod.update_tags(self.store, tags)
        status_mod.touch(self.store, touches)
        if remove_missing and not cancelled():
            # The folders as named too: sources stored under a linked name before are let go.
            folders = list(dict.fromkeys(roots + given))
            self._remove_missing(folders, files, ignored, reported, summary)
        summary.ignored = sum(ignored_reasons.values())
        summary.ignored_reasons = dict(ignored_reasons)
        summary.seconds = time.perf_counter() - t0
        summary.timings["parse_cpu"] = self._parse_s
        summary.timings["total"] = summary.seconds
        summary.cancelled = cancelled()
        emit(IndexEvent("done", files_done=state["done"], files_total=len(files),
                        chunks=state["chunks"], bytes=state["bytes"], bytes_total=work_bytes))
        return summary

    def _remove_missing(self, roots: list[Path], files: list[Found], ignored: set[str],
                        reported: set[str], summary: IndexSummary) -> None:
        """Forget sources under the roots whose files are gone (or are now ignored), and those
        reached through a link under a root that no longer leads to them."""
        present = {str(f.path) for f in files}
        gone: list[tuple[int, str, str]] = []
        for root in roots:
            if not os.path.isdir(root):
                continue
            for uri, k in status_mod.known_states(self.store, [str(root)]).items():
                if uri in present or uri == str(root) or (uri in reported and uri not in ignored):
                    continue
                if not os.path.lexists(uri):
                    gone.append((k.id, uri, "file no longer exists"))
                elif os.path.realpath(uri) != uri:
                    # Stored under a path through a link (as versions before real paths did):
                    # the file is a source under its real path.
                    gone.append((k.id, uri, "a path through a symbolic link; the file is kept under its real path"))
                elif uri in ignored:
                    gone.append((k.id, uri, "now ignored"))
            for sid, uri in status_mod.reached_via(self.store, str(root)):
                if uri not in present:
                    why = "file no longer exists" if not os.path.exists(uri) else \
                        f"no longer reached through a link under {root}"
                    gone.append((sid, uri, why))
        if gone:
            self.store.forget_ids([g[0] for g in gone])
            for _, uri, why in gone:
                summary.outcomes.append(FileOutcome(uri, None, "removed", why))

    def _store_batch(self, batch: list[Prepared], summary: IndexSummary) -> int:
        """Embed what needs embedding for a batch of drafts, then store each draft."""
        if not batch:
            return 0
        idx = None
        vectors: dict[str, np.ndarray] = {}
        if self._embedder is not None:
            t0 = time.perf_counter()
            emb = self._embedder()  # loads the model on first use
            summary.timings["embedder_load"] = summary.timings.get("embedder_load", 0.0) + time.perf_counter() - t0
            idx = self.store.ensure_active_index(emb.model_id, emb.dim)
            texts: dict[str, str] = {}
            for p in batch:
                for ch in p.draft.chunks:
                    texts.setdefault(text_hash(ch.text), ch.text)
            reuse = self.store.reusable_vectors(idx, texts)
            todo = [(h, t) for h, t in texts.items() if h not in reuse]
            if todo and emb.model_id == idx.model_id:
                t0 = time.perf_counter()
                mat = emb.embed([t for _, t in todo])
                summary.timings["embed"] = summary.timings.get("embed", 0.0) + time.perf_counter() - t0
                vectors = {h: v for (h, _), v in zip(todo, mat)}
            elif todo:
                log.info("active index is for %s; %d chunks wait for 'deskmind reembed'",
                         idx.model_id, len(todo))
        embedded = len(vectors)  # put_source adds carried-over vectors to the dict
        t0 = time.perf_counter()
        for p in batch:
            try:
                links_mod.put_source_with_links(self.store, p.draft, idx, vectors, p.links)
            except Exception as exc:
                log.error("could not store %s: %s", p.path, exc)
                p.outcome.status, p.outcome.reason = "failed", f"could not store: {exc}"
                p.outcome.chunks = 0
                if "full" in str(exc).lower():
                    raise
        summary.timings["store"] = summary.timings.get("store", 0.0) + time.perf_counter() - t0
        return embedded


def _one_per_real_path(found: list[Found], passed: Callable[[Passed], None]) -> list[Found]:
    """The files to index, one per real path: a second way to the same file (a symbolic link,
    or roots that overlap) is counted as ignored, not indexed again."""
    first: dict[Path, Found] = {}
    for f in found:
        seen = first.get(f.path)
        if seen is None:
            first[f.path] = f
            continue
        if seen.via is not None and f.via is None:
            first[f.path], f = f, seen  # reached directly too: no link is needed to keep it
        if f.via is not None and f.via != first[f.path].via:
            passed(Passed(str(f.via), "ignored", "same file as another path (a symbolic link)"))
    return list(first.values())


def _mb(n: int) -> str:
    """Megabytes (MiB, as the setting counts them) for people: 2048, 50, 0.25."""
    v = n / (1024 * 1024)
    return f"{v:.0f}" if v >= 10 else f"{v:.2g}" if v < 1 else f"{v:.1f}"
