"""One GGUF loaded by llama.cpp's server engine (xllamacpp), in this process.

An engine generates one answer at a time under its lock. Closing it cancels the generation in
flight and waits for it to leave llama.cpp before the weights are freed. Engines are shared
through :class:`~deskmind.core.runtimes.engines.EnginePool` (:func:`load_engine` is its
loader); :class:`~deskmind.core.runtimes.llamacpp.LlamaCppRuntime` borrows one per answer.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

from deskmind.core.errors import ModelUnavailableError, UserInputError

log = logging.getLogger(__name__)

# Prompt tokens evaluated between two chances to cancel. llama.cpp's physical batch (n_ubatch)
# is 512 by default, so a logical batch of the same size costs no prompt speed.
N_BATCH = 512
# The context window of an embedded engine. Its KV cache is held in memory for the model's
# life: 4096 tokens of SmolLM2-135M take ~95 MB in f16 (8192 would take ~190 MB), and a grounded
# question with six passages fits in well under 4096.
N_CTX = 4096


class LlamaEngine:
    """One GGUF loaded by llama.cpp's server engine, generating one answer at a time."""

    def __init__(self, model_path: Path, *, n_ctx: int = N_CTX, threads: int | None = None,
                 n_batch: int = N_BATCH) -> None:
        try:
            import xllamacpp
        except ImportError:
            raise UserInputError("the embedded runtime needs xllamacpp: pip install xllamacpp") from None
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelUnavailableError(f"no model file at {model_path}")
        self.path = model_path
        self.n_ctx = n_ctx
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.n_ctx = n_ctx
        self.threads = threads or threads_for_load()
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = self.threads
        # llama.cpp's automatic fitting of the context to free memory loads the model a first
        # time to measure it: 0.83 s against 1.33 s for a load of SmolLM2-135M here (1 thread,
        # load average 10). n_ctx is set, and a 4096-token cache fits any machine that runs this.
        params.fit_params = False
        params.n_parallel = 1
        params.n_batch = n_batch
        params.n_ubatch = min(n_batch, params.n_ubatch)
        # llama.cpp's server keeps old prompts' states in RAM (up to 8 GiB by default), which
        # grows the app by tens of MB per question; the slot's own cache still reuses a
        # shared prefix (the system prompt) from one question to the next.
        params.cache_ram_mib = 0
        # An 8-bit KV cache: ~45 MB less for SmolLM2's 4096 tokens, with no loss one can read
        # in its answers (llama.cpp's q8_0 cache is within noise of f16 on perplexity).
        params.cache_type_k = params.cache_type_v = xllamacpp.ggml_type.GGML_TYPE_Q8_0
        # llama.cpp logs every load and request to stderr; a person running `deskmind note`
        # or `ask` must not read that. Its own log comes back with debug logging (-v -v).
        params.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else -1
        try:
            self.server: Any = xllamacpp.Server(params)
        except Exception as exc:  # a file that is not a GGUF llama.cpp can load
            raise ModelUnavailableError(f"llama.cpp could not load {model_path}: {exc}") from None
        self._lock = threading.Lock()  # held for the whole of each generation
        self._served = False  # whether llama.cpp's loop has handled a task (see close)
        self._closing = threading.Event()

    def generate(self, body: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool],
                 stop: threading.Event) -> None:
        """Stream one chat completion into ``on_chunk`` (blocking, any thread but an event
        loop's). It ends early when ``on_chunk`` returns True, ``stop`` is set or the engine
        closes: at the next token, or during the prompt at the next batch."""
        with self._lock:
            if self.server is None:
                raise ModelUnavailableError(f"the model {self.path.name} was unloaded")
            if stop.is_set():
                return

            cut = [False]  # stopped by close(), not by its consumer

            def callback(chunk: Any) -> bool:
                halt = bool(on_chunk(chunk)) if isinstance(chunk, dict) else False
                if not (halt or stop.is_set()) and self._closing.is_set():
                    cut[0] = True
                return halt or stop.is_set() or cut[0]

            self._served = True
            res = self.server.handle_chat_completions({**body, "return_progress": True}, callback)
            if cut[0]:
                raise ModelUnavailableError(f"the model {self.path.name} was unloaded while it answered")
            if isinstance(res, dict) and "error" in res:
                raise ModelUnavailableError(f"llama.cpp: {res['error']}")

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def close(self) -> None:
        """Cancel the generation in flight, wait for it to leave llama.cpp, free the model."""
        self._closing.set()
        with self._lock:
            server, self.server = self.server, None
            if server is not None and not self._served:
                # A server freed before its loop handled a first task can hang in its
                # destructor (1 in 3 to 1 in 5 closes right after a load): one raw completion of
                # one token (~13 ms for SmolLM2-135M) makes the loop run first.
                server.handle_completions({"prompt": " ", "n_predict": 1}, lambda _chunk: False)
            # Dropping the last reference stops llama.cpp's loop (after the batch in hand)
            # and frees the weights before close returns.
            del server


def threads_for_load(cores: int | None = None, load: float | None = None) -> int:
    """Threads for a model loaded now: one when the machine's cores are all busy, else every
    core (up to four). llama.cpp's threads wait for each other at every layer, so one of them
    descheduled stalls all: with the load average at 7-10 on two cores, SmolLM2-135M took 2.9 s
    to its first token with two threads and 0.4-0.7 s with one; on an idle machine two threads
    are the faster. llama.cpp fixes the count when the model loads."""
    cores = cores or os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average (Windows)
            load = 0.0
    return 1 if load >= cores else max(1, min(4, cores))


def load_engine(path: Path) -> LlamaEngine:
    """The pool's loader for GGUF files."""
    engine = LlamaEngine(path)
    log.info("%s runs on %d thread(s) (load average %.1f on %d cores)", path.name, engine.threads,
             os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0, os.cpu_count() or 1)
    return engine
