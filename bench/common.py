"""Shared pieces of the benchmarks: a real text corpus, its cached embeddings, timing helpers.

The real corpus is the Python standard library's docstrings (read with ``ast``, nothing is
imported) plus the plain-text files under /usr/share/doc, cut into chunks of up to 80 words.
Its embeddings are cached under bench/out/ so that reruns start at once.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
import statistics
import sysconfig
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np


OUT = Path(__file__).resolve().parent / "out"
MIN_WORDS = 8  # "Return self." is not a chunk anyone searches for
# Shorter than the indexer's ~180-word chunks so that embedding 24k of them stays affordable
# on two shared cores; the vectors are still the real model's vectors of real text.
CORPUS_MAX_WORDS = 80


def _stdlib_docstrings() -> Iterator[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("site-packages", "dist-packages"):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        mod = ".".join(rel.with_suffix("").parts)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    name = getattr(node, "name", None)
                    yield (f"{mod}.{name}" if name else mod), doc


def _share_doc_texts() -> Iterator[tuple[str, str]]:
    root = Path("/usr/share/doc")
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        name = path.name.lower()
        if not path.is_file() or path.is_symlink() or name.startswith("copyright"):
            continue
        if not (name.endswith((".txt", ".md", ".gz")) or name.startswith(("readme", "news"))):
            continue
        try:
            data = path.read_bytes()
            if name.endswith(".gz"):
                if not name.startswith(("readme", "news", "changelog")):
                    continue
                data = gzip.decompress(data)
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
            continue
        yield str(path), text[:200_000]


def _windows(text: str, max_words: int) -> Iterator[str]:
    """Paragraphs merged up to ``max_words`` words; longer paragraphs cut at word boundaries."""
    buf: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        words = para.split()
        while len(words) > max_words:
            if buf:
                yield " ".join(buf)
                buf = []
            yield " ".join(words[:max_words])
            words = words[max_words:]
        if len(buf) + len(words) > max_words:
            yield " ".join(buf)
            buf = []
        buf.extend(words)
    if buf:
        yield " ".join(buf)


def real_chunks(limit: int | None = None, max_words: int = CORPUS_MAX_WORDS) -> list[str]:
    """Chunks of real English text: stdlib docstrings first, then /usr/share/doc."""
    out: list[str] = []
    seen: set[str] = set()
    for source in (_stdlib_docstrings(), _share_doc_texts()):
        for _, text in source:
            for ch in _windows(text, max_words):
                if len(ch.split()) < MIN_WORDS or ch in seen:
                    continue
                seen.add(ch)
                out.append(ch)
                if limit and len(out) >= limit:
                    return out
    return out


def embedded_corpus(embedder: object, limit: int, log: Callable[[str], None] = print,
                    parts: int | None = None) -> tuple[list[str], np.ndarray]:
    """The first ``limit`` real chunks and their vectors, cached in bench/out/ (resumable).

    With ``parts``, stop after that many blocks of 1024 chunks (a quick run reuses them)."""
    model = getattr(embedder, "model_id", "model")
    stem = OUT / f"corpus-{limit}-w{CORPUS_MAX_WORDS}-{re.sub(r'[^A-Za-z0-9_.-]', '_', model)}"
    vec_file, text_file = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if vec_file.is_file() and text_file.is_file():
        texts = json.loads(text_file.read_text())
        mat = np.load(vec_file)
        if len(texts) == len(mat):
            return texts, mat
    OUT.mkdir(parents=True, exist_ok=True)
    if text_file.is_file():
        texts = json.loads(text_file.read_text())
    else:
        texts = real_chunks(limit)
        text_file.write_text(json.dumps(texts))
    t0 = time.perf_counter()
    parts_: list[np.ndarray] = []
    announced = False
    step = 1024
    for i in range(0, len(texts), step):
        if parts is not None and i // step >= parts:
            texts = texts[:i]
            return texts, np.concatenate(parts_).astype(np.float32)
        part = Path(f"{stem}.part{i // step:04d}.npy")
        if part.is_file():
            parts_.append(np.load(part))
            continue
        if not announced:
            log(f"embedding {len(texts)} real chunks once (cached in {vec_file.name}) ...")
            announced = True
        parts_.append(embedder.embed(texts[i:i + step]))
        np.save(part, parts_[-1])
        done = min(i + step, len(texts))
        log(f"  {done}/{len(texts)} chunks, {time.perf_counter() - t0:.0f} s")
    mat = np.concatenate(parts_).astype(np.float32)
    tmp = stem.with_suffix(".tmp.npy")
    np.save(tmp, mat)
    os.replace(tmp, vec_file)
    for i in range(0, len(texts), step):
        Path(f"{stem}.part{i // step:04d}.npy").unlink(missing_ok=True)
    return texts, mat


def make_embedder(cache_dir: Path | None = None, model_id: str | None = None) -> object:
    """The default embedder (or ``model_id``), its derived and optimised graphs cached here."""
    from deskmind.core.embed.base import DEFAULT_MODEL_ID, EmbedderSpec
    from deskmind.core.embed.factory import create_embedder

    OUT.mkdir(parents=True, exist_ok=True)
    cache_dir = cache_dir or OUT / "model-cache"
    return create_embedder(EmbedderSpec(model_id or DEFAULT_MODEL_ID, {"cache_dir": str(cache_dir)}))


def percentiles(samples_ms: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) of timings in ms."""
    s = sorted(samples_ms)
    if not s:
        return float("nan"), float("nan")
    p95 = s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]
    return statistics.median(s), p95


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


QUERIES = [
    "how do I parse a date string with a timezone",
    "open a file for reading and writing in binary mode",
    "compress data with gzip",
    "send an email with an attachment",
    "create a temporary directory that is removed afterwards",
    "sort a list of dictionaries by a key",
    "read environment variables",
    "spawn a subprocess and capture its output",
    "thread pool executor map",
    "regular expression match groups",
    "encode bytes as base64",
    "decimal rounding modes",
    "socket timeout on connect",
    "serialize objects to json with custom encoder",
    "walk a directory tree recursively",
    "hash a password securely",
    "parse command line arguments with subcommands",
    "logging configuration from a dictionary",
    "unicode normalization of strings",
    "calculate the median of numbers",
    "read a csv file with headers",
    "http server that serves files",
    "copy file permissions and metadata",
    "cancel an asyncio task",
    "weak references to objects",
    "iterate over pairs of consecutive items",
    "xml element tree parsing",
    "random sample without replacement",
    "context manager that suppresses exceptions",
    "format a number with thousands separators",
    "signal handler for interrupt",
    "memory usage of python objects",
]
