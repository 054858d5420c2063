"""One indexing run: the state its stages share, and one method per stage.

:meth:`Indexer.index <deskmind.core.ingest.indexer.Indexer.index>` makes an :class:`IndexRun`
and runs it: check the paths, scan them, load what is known of the files, read and parse on a
pool while embedding and storing on the calling thread, then record statuses and forget what
is gone. Everything runs on the calling thread (a worker, never the GUI thread) except the
reading and parsing, which the indexer's ``prepare`` does on the pool.
"""

from __future__ import annotations

import itertools
import logging
import os
import stat as stat_mod
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from deskmind.core.errors import UserInputError
from deskmind.core.ingest import links as links_mod
from deskmind.core.ingest import status as status_mod
from deskmind.core.ingest.ignore import default_reason
from deskmind.core.ingest.outcomes import FileOutcome, IndexEvent, IndexSummary, Prepared
from deskmind.core.ingest.walk import Found, Passed, not_a_file, walk
from deskmind.core.ingest.workers import Cancelled, Extraction, ParserPool
from deskmind.core.memory import uris
from deskmind.core.memory.store import text_hash
from deskmind.core.memory.vectors import VectorIndex

if TYPE_CHECKING:
    from deskmind.core.embed.base import Embedder
    from deskmind.core.ingest.indexer import Indexer

log = logging.getLogger(__name__)

EMBED_BATCH_CHUNKS = 64
IN_FLIGHT = 32  # files being read/parsed ahead of the embedder: bounds memory on big trees
CANCEL_POLL_S = 0.1  # how often the run looks at the cancel flag while a file is being parsed
STATUS_BATCH = 500
# Large texts (streamed files) parsed ahead of the file being stored; each holds up to the text
# budget (16 MB by default) until its turn, so they are few.
LARGE_AHEAD = 1


class LargeTextGate:
    """Keeps a pool thread that has parsed a large text from finishing while ``limit`` others
    already wait to be stored, unless its file is next in line (so the run never waits on a
    thread that waits on the run: the pool starts files in order, so the next file in line is
    running or done). Memory then holds at most ``limit`` + pool size large texts."""

    def __init__(self, limit: int, cancelled: Callable[[], bool]) -> None:
        self.limit = limit
        self.cancelled = cancelled
        self._cond = threading.Condition()
        self._ready = 0   # large texts parsed and not yet stored
        self._head = 0    # sequence number of the next file in line

    def hold(self, seq: int) -> None:
        """Pool thread: file ``seq`` has a large text; wait for room."""
        with self._cond:
            while seq != self._head and self._ready >= self.limit and not self.cancelled():
                self._cond.wait(CANCEL_POLL_S)
            self._ready += 1

    def stored(self) -> None:
        """Indexing thread: one large text was stored (or dropped)."""
        with self._cond:
            self._ready -= 1
            self._cond.notify_all()

    def next_in_line(self, seq: int) -> None:
        with self._cond:
            self._head = seq
            self._cond.notify_all()


class IndexRun:
    def __init__(self, indexer: "Indexer", paths: Iterable[Path | str],
                 on_event: Callable[[IndexEvent], None] | None,
                 cancel: threading.Event | None, remove_missing: bool) -> None:
        self.indexer = indexer
        self.store = indexer.store
        self.t0 = time.perf_counter()
        self.emit = on_event or (lambda _e: None)
        self.cancel = cancel
        self.remove_missing = remove_missing
        self.summary = IndexSummary()
        self.given = [Path(os.path.abspath(os.path.expanduser(str(p)))) for p in paths]
        self.roots: list[Path] = []
        # what the scan passed over, and the statuses waiting to be written
        self.records: list[status_mod.StatusRecord] = []
        self.ignored: set[str] = set()
        self.ignored_reasons: Counter[str] = Counter()
        self.reported: set[str] = set()
        # paths that are no sources (FIFOs, sockets, broken links): whatever is kept there goes
        self.unlisted: dict[str, str] = {}
        # what the scan found, and what the memory knows of it
        self.files: list[Found] = []
        self.known: dict[str, status_mod.Known] = {}
        self.vaults: dict[Path, str] = {}
        self.tags: list[tuple[int, str, str | None]] = []
        self.touches: list[tuple[int, int, float]] = []
        # progress
        self.work_bytes = 0
        self.files_done = self.bytes_done = self.chunks_done = 0
        # drafts waiting to be embedded and stored, and files being read on the pool
        self.pending: list[Prepared] = []
        self.pending_chunks = 0
        self.in_flight: deque[tuple[Found, Future[Prepared]]] = deque()
        self.submitted = self.taken = 0  # files handed to the pool, and taken off it, in order
        self.large_gate = LargeTextGate(LARGE_AHEAD, self.cancelled)
        self.parse_s = 0.0
        self.extraction = Extraction(indexer.budget, None, cancel)  # read_and_store adds the parsers
        self._parse_lock = threading.Lock()

    def run(self) -> IndexSummary:
        self.check_paths()
        self.scan()
        self.load_known()
        self.read_and_store()
        self.finish()
        return self.summary

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    # -- stage 1: the paths named ------------------------------------------------------------

    def check_paths(self) -> None:
        for r in self.given:
            if not os.path.lexists(r):
                raise UserInputError(f"no such file or folder: {r}")
        # Sources are known by their real paths: a file reached through a symbolic link is the
        # same source, with its real folder's privacy tag, as the file reached directly.
        self.roots = [Path(os.path.realpath(r)) for r in self.given]

    # -- stage 2: scan ------------------------------------------------------------------------

    def scan(self) -> None:
        found: list[Found] = []
        for spelled, root in zip(self.given, self.roots):
            if os.path.isdir(root):
                found.extend(walk(root, self.indexer.ignore, self.passed, links_mod.vault_root(root)))
                continue
            f = self._named_file(spelled, root)
            if f is not None:
                found.append(f)
        self.files = one_per_real_path(found, self.passed)
        self.summary.timings["scan"] = time.perf_counter() - self.t0
        self.emit(IndexEvent("scan", files_total=len(self.files)))

    def _named_file(self, spelled: Path, root: Path) -> Found | None:
        """A file named explicitly is read unless it is a secret or a binary by name."""
        reason = default_reason(spelled.name) or default_reason(root.name)
        if reason:
            self.passed(Passed(str(root), "skipped", f"ignored: {reason}"))
            return None
        try:
            st = os.stat(root)
        except OSError as exc:
            if os.path.islink(spelled) and not os.path.exists(spelled):
                self.passed(Passed(str(spelled), "skipped", "broken symbolic link (or a link loop)", listed=False))
            else:
                self.passed(Passed(str(root), "failed", f"cannot stat: {exc.strerror or exc}"))
            return None
        if not stat_mod.S_ISREG(st.st_mode):
            self.passed(Passed(str(root), "skipped", not_a_file(st.st_mode), listed=False))
            return None
        return Found(root, st, links_mod.vault_root(root), None if spelled == root else spelled)

    def passed(self, p: Passed) -> None:
        """The scan passed over a path: ignored (counted), or skipped/failed (reported)."""
        if p.status == "ignored":
            self.ignored.add(p.path)
            self.ignored_reasons[p.reason] += 1
            return
        self.summary.outcomes.append(FileOutcome(p.path, None, p.status, p.reason))
        if not p.listed:
            self.unlisted[p.path] = p.reason
            return
        self.reported.add(p.path)
        self.records.append(status_mod.StatusRecord(
            uris.path_uri(p.path), "other", p.status, p.reason,
            privacy=self.indexer.privacy_for(Path(os.path.realpath(p.path)))))

    # -- stage 3: what is known ---------------------------------------------------------------

    def load_known(self) -> None:
        # What a killed run staged of a large file is of no use to anyone: drop it first.
        self.store.staging.discard_stale()
        self.known = status_mod.known_states(self.store, [str(r) for r in self.roots])
        # Files outside every root, reached through a link inside one.
        outside = [u for u in (uris.path_uri(f.path) for f in self.files if f.via is not None)
                   if u not in self.known]
        self.known.update(status_mod.known_by_uri(self.store, outside))
        for f in self.files:
            if f.vault is not None and f.vault not in self.vaults:
                self.vaults[f.vault] = links_mod.ensure_collection(self.store, f.vault)
        self.work_bytes = sum(f.st.st_size for f in self.files)

    # -- stage 4: read and parse on the pool, embed and store here ----------------------------

    def read_and_store(self) -> None:
        ix = self.indexer
        # Parser processes start when the first file that needs one comes; closed (killed, when
        # cancelled mid-file) before this returns.
        parsers = ParserPool(ix.workers, ix.parser_memory_mb) if ix.parser_memory_mb else None
        self.extraction = Extraction(ix.budget, parsers, self.cancel)
        try:
            self._read_and_store()
        finally:
            if parsers is not None:
                parsers.close()

    def _read_and_store(self) -> None:
        with ThreadPoolExecutor(max_workers=self.indexer.workers, thread_name_prefix="deskmind-parse") as pool:
            for f in self.files:
                if self.cancelled():
                    break
                coll = self.vaults.get(f.vault) if f.vault else None
                k = self.known.get(uris.path_uri(f.path))
                quick = self.indexer.triage(f, k, coll, self.tags)
                if quick is not None:
                    # An indexed file that grew past the size cap: its stored content is stale.
                    grew = (quick.status == "skipped" and (quick.reason or "").startswith("too large")
                            and k is not None and k.status == "indexed" and k.size != f.st.st_size)
                    self.settle(f, quick, stale=grew)
                    continue
                self.in_flight.append((f, pool.submit(self._prepare, f, k, coll, self.submitted)))
                self.submitted += 1
                self.drain(IN_FLIGHT)
            self.drain(0)
            if self.cancelled():
                for _, fut in self.in_flight:
                    fut.cancel()
        self.flush()

    def _prepare(self, f: Found, known: status_mod.Known | None, collection: str | None, seq: int) -> Prepared:
        """Pool thread."""
        t0 = time.perf_counter()
        try:
            prep = self.indexer.prepare(f, known, collection, self.extraction)
        finally:
            with self._parse_lock:
                self.parse_s += time.perf_counter() - t0
        if prep.stream is not None:
            self.large_gate.hold(seq)
        return prep

    def drain(self, limit: int) -> None:
        """Take finished files off the pool until at most ``limit`` are still in flight."""
        while len(self.in_flight) > limit and not self.cancelled():
            f, fut = self.in_flight[0]
            try:
                prep = fut.result(timeout=CANCEL_POLL_S)
            except FutureTimeout:
                continue  # look at the cancel flag again
            self.in_flight.popleft()
            self.taken += 1
            self.large_gate.next_in_line(self.taken)
            if prep.touch:
                self.touches.append(prep.touch)
            if prep.draft is None:
                self.settle(f, prep.outcome, prep.replaced, unlisted=prep.unlisted)
                continue
            if prep.stream is not None:
                self.flush()  # files before it are stored before it
                try:
                    self.store_streamed(prep)
                finally:
                    self.large_gate.stored()
                self.summary.outcomes.append(prep.outcome)
                self.progress(f, prep.outcome)
                continue
            self.pending.append(prep)
            self.pending_chunks += len(prep.draft.chunks)
            self.summary.outcomes.append(prep.outcome)
            self.progress(f, prep.outcome)
            if self.pending_chunks >= EMBED_BATCH_CHUNKS:
                self.flush()

    def settle(self, f: Found, o: FileOutcome, replaced: str | None = None, stale: bool = False,
               unlisted: bool = False) -> None:
        """A file that is done without a new draft: its outcome and, unless unchanged, its status."""
        self.summary.outcomes.append(o)
        if unlisted:
            # A regular file at scan time, something else when opened (swapped in between).
            self.unlisted[str(f.path)] = o.reason or "not a regular file"
        elif o.status in ("skipped", "failed", "queued"):
            self.records.append(status_mod.StatusRecord(
                uris.path_uri(f.path), o.kind or "other", o.status, o.reason, f.st.st_size, f.st.st_mtime,
                self.indexer.privacy_for(f.path), self.vaults.get(f.vault) if f.vault else None,
                drop_content=stale or replaced is not None, content_hash=replaced))
            if len(self.records) >= STATUS_BATCH:
                self.flush_records()
        self.progress(f, o)

    def progress(self, f: Found, o: FileOutcome) -> None:
        self.files_done += 1
        self.bytes_done += f.st.st_size
        self.chunks_done += o.chunks
        elapsed = time.perf_counter() - self.t0
        eta = (elapsed / self.bytes_done * (self.work_bytes - self.bytes_done)) if self.bytes_done else None
        self.emit(IndexEvent("file", files_done=self.files_done, files_total=len(self.files),
                             chunks=self.chunks_done, bytes=self.bytes_done, bytes_total=self.work_bytes,
                             eta_s=eta, path=o.path, status=o.status, reason=o.reason))

    def flush(self) -> None:
        """Embed and store the pending drafts, then write the statuses gathered so far (they
        show up in ``deskmind sources`` while a long run goes on)."""
        self.summary.embedded_chunks += self.store_batch(self.pending)
        self.pending, self.pending_chunks = [], 0
        self.flush_records()

    def flush_records(self) -> None:
        status_mod.record_statuses(self.store, self.records)
        self.records.clear()

    def store_batch(self, batch: list[Prepared]) -> int:
        """Embed what needs embedding for a batch of drafts, then store each draft."""
        if not batch:
            return 0
        timings = self.summary.timings
        vectors: dict[str, np.ndarray] = {}
        emb, idx = self.embedder_and_index()
        if emb is not None and idx is not None:
            texts: dict[str, str] = {}
            for p in batch:
                for ch in p.draft.chunks:
                    texts.setdefault(text_hash(ch.text), ch.text)
            vectors = self._embed_missing(emb, idx, texts)
        embedded = len(vectors)  # put_source adds carried-over vectors to the dict
        t0 = time.perf_counter()
        for p in batch:
            try:
                links_mod.put_source_with_links(self.store, p.draft, idx, vectors, p.links)
            except Exception as exc:
                self._not_stored(p, exc)
        timings["store"] = timings.get("store", 0.0) + time.perf_counter() - t0
        return embedded

    def _embed_missing(self, emb: "Embedder", idx: VectorIndex,
                       texts: dict[str, str]) -> dict[str, np.ndarray]:
        """Vectors for the texts (by text hash) that no stored chunk has one for yet; none
        when the active index is another model's (they wait for 'deskmind reembed')."""
        reuse = self.store.reusable_vectors(idx, texts)
        todo = [(h, t) for h, t in texts.items() if h not in reuse]
        if not todo:
            return {}
        if emb.model_id != idx.model_id:
            log.info("active index is for %s; %d chunks wait for 'deskmind reembed'",
                     idx.model_id, len(todo))
            return {}
        timings = self.summary.timings
        t0 = time.perf_counter()
        mat = emb.embed([t for _, t in todo])
        timings["embed"] = timings.get("embed", 0.0) + time.perf_counter() - t0
        return {h: v for (h, _), v in zip(todo, mat)}

    def embedder_and_index(self) -> tuple["Embedder | None", VectorIndex | None]:
        """The embedder (loaded on first use) and the active index, or None and None."""
        factory = self.indexer.embedder_factory
        if factory is None:
            return None, None
        timings = self.summary.timings
        t0 = time.perf_counter()
        emb = factory()
        timings["embedder_load"] = timings.get("embedder_load", 0.0) + time.perf_counter() - t0
        return emb, self.store.ensure_active_index(emb.model_id, emb.dim)

    def store_streamed(self, p: Prepared) -> None:
        """A large file: chunk, embed and stage it a batch at a time, then publish it in one
        short transaction (see Memory.staging). Memory holds one batch of chunks and vectors,
        and the text hashes of the file's chunks (to embed repeated text once)."""
        assert p.stream is not None and p.draft is not None
        timings = self.summary.timings
        emb, idx = self.embedder_and_index()
        embeds = emb is not None and idx is not None and emb.model_id == idx.model_id
        stage = self.store.staging.open(p.draft.uri, idx.id if idx else None)
        seen: set[str] = set()
        n = 0
        try:
            while batch := list(itertools.islice(p.stream, EMBED_BATCH_CHUNKS)):
                if self.cancelled():
                    raise Cancelled()
                hashes = [text_hash(ch.text) for ch in batch]
                vectors: dict[str, np.ndarray] = {}
                if embeds:
                    new = {h: ch.text for h, ch in zip(hashes, batch) if h not in seen}
                    vectors = self._embed_missing(emb, idx, new)  # type: ignore[arg-type]
                    seen.update(new)
                t0 = time.perf_counter()
                self.store.staging.add(stage, n, batch, hashes, vectors)
                timings["store"] = timings.get("store", 0.0) + time.perf_counter() - t0
                self.summary.embedded_chunks += len(vectors)
                n += len(batch)
            if idx is not None and not embeds:
                log.info("active index is for %s; the chunks of %s wait for 'deskmind reembed'",
                         idx.model_id, p.path)
            t0 = time.perf_counter()
            links_mod.put_source_with_links(self.store, p.draft, idx, {}, p.links, staged=stage)
            timings["store"] = timings.get("store", 0.0) + time.perf_counter() - t0
            p.outcome.chunks = n
        except Cancelled:
            self._discard_stage(stage)
            p.outcome.status, p.outcome.reason, p.outcome.chunks = "failed", "cancelled", 0
        except Exception as exc:
            self._discard_stage(stage)
            self._not_stored(p, exc)
        finally:
            p.stream = None  # the text and its chunks can go

    def _discard_stage(self, stage: int) -> None:
        try:
            self.store.staging.discard(stage)
        except Exception as exc:  # left for the next run's clean-up
            log.warning("could not drop staged chunks %d: %s", stage, exc)

    def _not_stored(self, p: Prepared, exc: Exception) -> None:
        log.error("could not store %s: %s", p.path, exc)
        p.outcome.status, p.outcome.reason = "failed", f"could not store: {exc}"
        p.outcome.chunks = 0
        if "full" in str(exc).lower():
            raise exc

    # -- stage 5: statuses, tags, what is gone ------------------------------------------------

    def finish(self) -> None:
        self.flush_records()
        status_mod.update_tags(self.store, self.tags)
        status_mod.touch(self.store, self.touches)
        self.forget_unlisted()
        if self.remove_missing and not self.cancelled():
            # The folders as named too: sources stored under a linked name before are let go.
            self.forget_missing(list(dict.fromkeys(self.roots + self.given)))
        s = self.summary
        s.ignored = sum(self.ignored_reasons.values())
        s.ignored_reasons = dict(self.ignored_reasons)
        s.seconds = time.perf_counter() - self.t0
        s.timings["parse_cpu"] = self.parse_s
        s.timings["total"] = s.seconds
        s.cancelled = self.cancelled()
        self.emit(IndexEvent("done", files_done=self.files_done, files_total=len(self.files),
                             chunks=self.chunks_done, bytes=self.bytes_done, bytes_total=self.work_bytes))

    def forget_unlisted(self) -> None:
        """Forget sources kept at paths that turned out not to be regular files (a FIFO where a
        note was, a link whose target is gone): the outcome says what is there now."""
        if not self.unlisted:
            return
        by_uri = {uris.path_uri(p): p for p in self.unlisted}
        known = status_mod.known_by_uri(self.store, list(by_uri))
        if known:
            self.store.forget_ids([k.id for k in known.values()])
            for uri in known:
                path = by_uri[uri]
                self.summary.outcomes.append(FileOutcome(path, None, "removed", self.unlisted[path]))

    def forget_missing(self, roots: list[Path]) -> None:
        """Forget sources under the roots whose files are gone (or are now ignored), and those
        reached through a link under a root that no longer leads to them."""
        present = {uris.path_uri(f.path) for f in self.files}
        gone: list[tuple[int, str, str]] = []
        for root in roots:
            if not os.path.isdir(root):
                continue
            for uri, k in status_mod.known_states(self.store, [str(root)]).items():
                path = uris.uri_path(uri)
                if path is None or path == str(root) or path in self.unlisted:
                    continue  # the unlisted went already (forget_unlisted)
                if uri in present or (path in self.reported and path not in self.ignored):
                    # A file that vanished while this run read it keeps what was stored (an
                    # editor's save by rename): it goes on the next pass if it stays gone.
                    continue
                if not os.path.lexists(path):
                    gone.append((k.id, path, "file no longer exists"))
                elif os.path.realpath(path) != path:
                    # Stored under a path through a link (as versions before real paths did):
                    # the file is a source under its real path.
                    gone.append((k.id, path, "a path through a symbolic link; the file is kept under its real path"))
                elif path in self.ignored:
                    gone.append((k.id, path, "now ignored"))
            for sid, uri in status_mod.reached_via(self.store, str(root)):
                path = uris.uri_path(uri)
                if uri not in present and path is not None:
                    why = "file no longer exists" if not os.path.exists(path) else \
                        f"no longer reached through a link under {root}"
                    gone.append((sid, path, why))
        if gone:
            self.store.forget_ids([g[0] for g in gone])
            for _, path, why in gone:
                self.summary.outcomes.append(FileOutcome(path, None, "removed", why))


def one_per_real_path(found: list[Found], passed: Callable[[Passed], None]) -> list[Found]:
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
