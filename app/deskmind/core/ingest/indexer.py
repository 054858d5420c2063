"""Index files and folders into memory, incrementally and safely.

Per file: stat; unchanged size and mtime -> nothing is read. Otherwise read and hash; an
unchanged hash -> only the new mtime is recorded. Otherwise extract, chunk, embed (batched across
files, reusing vectors of text already embedded) and replace the source's chunks in one
transaction: a kill at any moment leaves the old or the new state of each file, never a mix.
New content that yields nothing to index (empty, binary, undecodable) removes the old chunks;
a failed read (permission denied, the file vanished or changed while read) keeps them.

Threads: ``index`` runs on the calling thread (a worker, never the GUI thread), which embeds
and stores; reading and parsing run on a small pool beside it. Progress goes to ``on_event``.
The stages of one call live in :class:`~deskmind.core.ingest.run.IndexRun`; this module decides,
per file, whether it needs reading (``triage``) and reads it (``prepare``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import os
import stat as stat_mod
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

from deskmind.core.embed.base import Embedder
from deskmind.core.ingest import budget as budget_mod
from deskmind.core.ingest import status as status_mod
from deskmind.core.ingest import transcribe
from deskmind.core.ingest.budget import Budget
from deskmind.core.ingest.chunker import chunk_sections, iter_chunks
from deskmind.core.ingest.outcomes import FileOutcome, IndexEvent, IndexSummary, Prepared
from deskmind.core.ingest.privacy import PrivacyRules
from deskmind.core.ingest.run import IndexRun
from deskmind.core.ingest.types import DamagedFile, ExtractionError, Extracted, FileTypes, Unsupported
from deskmind.core.ingest.walk import Found, not_a_file
from deskmind.core.ingest.workers import Cancelled, Extraction
from deskmind.core.memory import uris
from deskmind.core.memory.models import DEFAULT_PRIVACY, SourceDraft
from deskmind.core.memory.api import Memory

__all__ = ["Indexer", "IndexEvent", "IndexSummary", "FileOutcome"]

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_MEDIA_BYTES = 4096 * 1024 * 1024
# Above this many characters of text a file's chunks are made, embedded and staged a batch at a
# time (see Memory.staging) rather than all held in memory for one transaction.
STREAM_TEXT_CHARS = 256 * 1024
_USE_REGISTRY = object()


class Indexer:
    """Indexes files under their real paths (symbolic links resolved); ``privacy_for`` is
    called with real paths."""

    def __init__(
        self,
        store: Memory,
        embedder: Callable[[], Embedder] | None,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_media_bytes: int = DEFAULT_MAX_MEDIA_BYTES,
        privacy_for: Callable[[Path], str] | None = None,
        ignore: Iterable[str] = (),
        transcriber: Any = _USE_REGISTRY,
        workers: int = 2,
        file_types: FileTypes | None = None,
        budget: Budget | None = None,
        parser_memory_mb: int | None = 1024,
    ) -> None:
        self.store = store
        self.embedder_factory = embedder
        self.max_file_bytes = max_file_bytes
        self.max_media_bytes = max_media_bytes
        self.privacy_for = privacy_for or (lambda _p: DEFAULT_PRIVACY)
        self.ignore = list(ignore)
        self._transcriber = transcriber
        self.workers = workers
        self.budget = budget or Budget()
        # Memory of each parser process; None parses every file on the indexer's own threads.
        self.parser_memory_mb = parser_memory_mb
        if file_types is None:
            from deskmind.core.ingest.extractors import builtin_file_types

            file_types = builtin_file_types()
        self.file_types = file_types

    @classmethod
    def for_settings(cls, store: Memory, embedder: Callable[[], Embedder] | None,
                     settings: Any, transcriber: Any = _USE_REGISTRY,
                     file_types: FileTypes | None = None, extraction: Any = None) -> "Indexer":
        """An indexer configured by ``settings.ingest`` (an IngestSettings) and ``extraction``
        (an ExtractionSettings: the budget per file and the parser processes)."""
        limits: dict[str, Any] = {}
        if extraction is not None:
            limits = {"budget": Budget.from_settings(extraction),
                      "parser_memory_mb": extraction.parser_memory_mb if extraction.parser_processes else None}
        return cls(
            store, embedder, **limits, transcriber=transcriber, file_types=file_types,
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

    def triage(self, f: Found, known: status_mod.Known | None, collection: str | None,
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
            unchanged = ((known.status in ("indexed", "failed") and not self.limits_raised(known))
                         or (known.status == "skipped" and not stale_skip)
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

    def limits_raised(self, known: status_mod.Known) -> bool:
        """A source that a budget or a parser's memory limit cut short or refused is read
        again, though unchanged, once that limit has another value (Settings → Indexing)."""
        return budget_mod.read_under_other_limits(known.read_under(), self.budget, self.parser_memory_mb)

    # -- per file (pool threads) ----------------------------------------------------------

    def prepare(self, f: Found, known: status_mod.Known | None, collection: str | None,
                extraction: Extraction | None = None) -> Prepared:
        """Read, hash and parse one file (a pool thread). ``extraction`` says where parsers run
        and under which budget (default: this thread, the indexer's budget)."""
        try:
            return self._prepare_inner(f, known, collection, extraction or Extraction(self.budget, None))
        except Cancelled:
            return Prepared(f.path, FileOutcome(str(f.path), None, "failed", "cancelled"))
        except Exception as exc:  # a bug in a parser or a library must not stop the batch
            log.exception("unexpected error on %s", f.path)
            return Prepared(f.path, FileOutcome(str(f.path), None, "failed", f"unexpected error: {exc}"))

    def _prepare_inner(self, f: Found, known: status_mod.Known | None, collection: str | None,
                       extraction: Extraction) -> Prepared:
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
                return dataclasses.replace(fail("skipped", not_a_file(st.st_mode)), unlisted=True)
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
        if known and known.content_hash == digest and known.status == "indexed" and not self.limits_raised(known):
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
                ex = extraction.extract(ft, path, data)
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
        except Cancelled:
            raise  # the run stops: not this file's fault, nothing to report
        except Exception as exc:
            log.exception("extractor failed on %s", path)
            return fail("failed", f"could not parse: {type(exc).__name__}: {exc}")
        stream = None
        if sum(len(s.text) for s in ex.sections) > STREAM_TEXT_CHARS:
            chunks = []
            lazy = iter_chunks(ex.sections, presplit=ex.presplit)
            first = next(lazy, None)
            if first is not None:
                stream = itertools.chain([first], lazy)
        else:
            chunks = chunk_sections(ex.sections, presplit=ex.presplit)
        if not chunks and stream is None:
            return nothing("skipped", "no text found in file" if not ft.media else "no speech found")
        try:
            now = os.stat(path)
        except OSError:
            return fail("failed", "file vanished while being read; will retry on next scan")
        if now.st_mtime != st.st_mtime or now.st_size != st.st_size or now.st_ino != st.st_ino:
            return fail("failed", "changed while being read; will retry on next scan")
        metadata = dict(ex.metadata)
        note = "; ".join(ex.left_out) or None
        if note:
            metadata["left_out"] = ex.left_out  # indexed up to a budget: what was not
        if f.via is not None:
            # the link it was reached through (see IndexRun.forget_missing)
            metadata["reached_via"] = uris.path_uri(f.via)
        draft = SourceDraft(
            uri=uris.path_uri(path), kind=kind,
            title=uris.replace_undecodable(ex.title) if ex.title else ex.title, content_hash=digest, size=st.st_size,
            mtime=st.st_mtime, privacy=self.privacy_for(path), collection=collection,
            metadata=metadata, text=ex.text, extractor=ex.extractor, chunks=chunks,
        )
        return Prepared(path, FileOutcome(uri, kind, "indexed", note, chunks=len(chunks)), draft,
                        links=ex.links, stream=stream)

    # -- the run --------------------------------------------------------------------------

    def index(
        self,
        paths: Iterable[Path | str],
        on_event: Callable[[IndexEvent], None] | None = None,
        cancel: threading.Event | None = None,
        remove_missing: bool = True,
    ) -> IndexSummary:
        """Index files and folders (see the module's docstring); each call is one
        :class:`~deskmind.core.ingest.run.IndexRun`."""
        return IndexRun(self, paths, on_event, cancel, remove_missing).run()


def _mb(n: int) -> str:
    """Megabytes (MiB, as the setting counts them) for people: 2048, 50, 0.25."""
    v = n / (1024 * 1024)
    return f"{v:.0f}" if v >= 10 else f"{v:.2g}" if v < 1 else f"{v:.1f}"
