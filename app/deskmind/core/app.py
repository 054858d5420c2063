"""The core's composition root: builds the services once and hands them out.

The command line, the tray app and the daemon each make one :class:`Core`. Expensive parts
(the embedder, the store) are built on first use, so a command that needs neither pays nothing.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from deskmind.core.config.paths import Paths
from deskmind.core.config.settings import Settings
from deskmind.core.config.store import SettingsStore
from deskmind.core.embed.base import Embedder, EmbedderSpec
from deskmind.core.embed.factory import create_embedder
from deskmind.core.errors import DeskmindError
from deskmind.core.memory.api import Memory
from deskmind.core.memory.backend import memory_location, open_memory
from deskmind.core.memory.models import SourceDraft

log = logging.getLogger(__name__)


class Completion(str):
    """A completion's text, knowing which model wrote it and whether a schema constrained it."""

    model: str
    structured: bool

    def __new__(cls, text: str, *, model: str = "", structured: bool = False) -> "Completion":
        self = super().__new__(cls, text)
        self.model, self.structured = model, structured
        return self


class Core:
    def __init__(self, paths: Paths | None = None, settings: Settings | None = None) -> None:
        self.paths = paths or Paths.from_env()
        self.settings_store = SettingsStore(self.paths.settings_path, settings)
        self._store: Memory | None = None
        self._embedders: dict[str, Embedder] = {}
        self._media_transcriber: Any = None
        self._file_types: Any = None
        self._engines: Any = None
        self._lock = threading.RLock()
        # Building an embedder can take seconds (the int8 model is derived on first use): it
        # has its own lock, so a request needing the store or the engines never waits for it.
        self._embedder_lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        """The current settings; change them through :attr:`settings_store`."""
        return self.settings_store.settings

    @property
    def engines(self) -> "Any":
        """The process's loaded models (:class:`EnginePool`), shared by every runtime hub:
        ask, note clean-up, minutes and the gateway load each model once."""
        with self._lock:
            if self._engines is None:
                from deskmind.core.runtimes.engines import EnginePool
                from deskmind.core.runtimes.llama_engine import load_engine

                self._engines = EnginePool(load_engine, keep_alive=self.settings.engine.keep_alive_s())
            return self._engines

    @property
    def store(self) -> Memory:
        with self._lock:
            if self._store is None:
                self._store = open_memory(self.memory_location(), machine=self.paths.data_dir)
            return self._store

    def memory_location(self) -> "str | Any":
        """Where the memory lives: ``DESKMIND_DB``, else ``[storage] url``, else the SQLite
        file in the data folder."""
        return memory_location(self.paths.db_path, self.settings)

    def embedder_spec(self, model_id: str | None = None) -> EmbedderSpec:
        e = self.settings.embedder
        mid = model_id or e.model_id
        options: dict[str, Any] = {"cache_dir": str(self.paths.cache_dir / "models")}
        if mid == e.model_id:
            options.update({k: v for k, v in (("model_path", e.model_path),
                                              ("tokenizer_path", e.tokenizer_path),
                                              ("threads", e.threads)) if v})
        return EmbedderSpec(model_id=mid, options=options)

    def embedder(self, model_id: str | None = None) -> Embedder:
        """The embedder for ``model_id`` (default: the configured one), built once."""
        mid = model_id or self.settings.embedder.model_id
        with self._embedder_lock:
            emb = self._embedders.get(mid)
            if emb is None:
                emb = create_embedder(self.embedder_spec(mid))
                self._embedders[mid] = emb
            return emb

    def _embedder_for_index(self, model_id: str) -> Embedder | None:
        """The embedder that made an index's vectors; None if it cannot be built here.

        After 'deskmind reembed --model X' the active index is X's: new notes and files must be
        embedded with X too, or they could never be found by meaning.
        """
        if model_id == self.settings.embedder.model_id:
            return self.embedder()
        try:
            return self.embedder(model_id)
        except DeskmindError as exc:
            log.warning("storing without vectors: %s", exc)
            return None

    def active_embedder(self) -> Embedder:
        """The embedder for new content: the active index's model, else the configured one."""
        idx = self.store.active_index()
        emb = self._embedder_for_index(idx.model_id) if idx is not None else None
        return emb or self.embedder()

    def remember(self, draft: "SourceDraft") -> int:
        """Store a source made by Deskmind itself (note, transcript, minutes, conversation),
        embedding its chunks with the active index's model. Returns the source id. Blocking."""
        from deskmind.core.memory.store import text_hash

        idx = self.store.active_index()
        if idx is None:
            default = self.embedder()
            idx = self.store.ensure_active_index(default.model_id, default.dim)
        emb = self._embedder_for_index(idx.model_id)
        vecs: dict = {}
        if emb is not None and draft.chunks:
            texts = {text_hash(c.text): c.text for c in draft.chunks}
            have = self.store.reusable_vectors(idx, texts)
            todo = [h for h in texts if h not in have]
            if todo:
                vecs = dict(zip(todo, emb.embed([texts[h] for h in todo])))
        return self.store.put_source(draft, idx, vecs)

    # Which agent acts for each task that runs without a person typing (see routing.toml).
    TASK_AGENTS = {"clean-note": "note-cleaner", "meeting-minutes": "meeting-minutes",
                   "clean-dictation": "dictation"}

    def complete(self, task: str, prompt: str, privacy: str = "private", *,
                 schema: dict[str, Any] | None = None,
                 avoid: frozenset[str] = frozenset()) -> "Completion":
        """Routed text completion with no retrieval and nothing saved: note clean-up, minutes.

        The routing rules decide where it runs (local by default) and the egress ledger records
        anything that leaves the machine. ``schema``: a JSON schema the answer must follow (the
        result says whether the runtime enforced it); ``avoid``: models ("provider:model") not to
        use. Blocking: call it from a worker thread.
        """
        from deskmind.core.ask.pipeline import AskOptions
        from deskmind.core.ask.session import ask_sync

        opts = AskOptions(task=task, agent=self.TASK_AGENTS.get(task, "quick-ask"),
                          use_memory=False, save=False, prompt_privacy=privacy,
                          response_schema=schema, avoid_models=frozenset(avoid))
        result = ask_sync(self, prompt, opts)
        route = result.route
        return Completion(result.answer, model=f"{route.get('provider')}:{route.get('model')}",
                          structured=bool(route.get("structured")))

    def searcher(self) -> "Any":
        return self.store.searcher(self.embedder)

    def indexer(self, transcribe_media: bool = True) -> "Any":
        """An indexer from the settings. With ``transcribe_media``, audio and video files are
        transcribed by the local speech engine (loaded on the first such file); without it, or
        when speech is not installed, they are stored as queued."""
        from deskmind.core.ingest.indexer import Indexer

        transcriber = self.media_transcriber() if transcribe_media else None
        return Indexer.for_settings(self.store, self.active_embedder, self.settings.ingest,
                                    transcriber=transcriber, file_types=self.file_types(),
                                    extraction=self.settings.extraction)

    def file_types(self) -> "Any":
        """The registry of file types and their extractors, filled with the built-ins once."""
        with self._lock:
            if self._file_types is None:
                from deskmind.core.ingest.extractors import builtin_file_types

                self._file_types = builtin_file_types()
            return self._file_types

    def media_transcriber(self) -> "Any":
        """Speech as ingestion's transcriber, built once; None when speech is not installed."""
        with self._lock:
            if self._media_transcriber is None:
                try:
                    from deskmind.core.speech.engine import TranscriptionEngine
                    from deskmind.core.speech.ingest_hook import LazyMediaTranscriber
                except ImportError as exc:
                    log.info("media files stay queued: speech is not available (%s)", exc)
                    return None
                # The settings when the engine loads (the first media file), not when built.
                self._media_transcriber = LazyMediaTranscriber(
                    lambda: TranscriptionEngine(self.settings.speech))
            return self._media_transcriber

    def close(self) -> None:
        with self._lock:
            if self._engines is not None:
                self._engines.close()
                self._engines = None
            if self._store is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> "Core":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
