"""Synthetic corpora for the search benchmark, built through the real store API.

Text: 80-180 words a chunk, 50 chunks a source. Each source has a topic: a few neighbouring real
chunks (stdlib docstrings, /usr/share/doc). Its chunks draw 60% of their words from the topic's
words and 40% from the whole corpus's word frequencies, so terms cluster in sources the way they
do in real text (uniform sampling would put every common word in every chunk and make FTS5
look far slower than it is on real files). Vectors: the real embedding of one of the topic's
chunks plus noise (cosine ~0.85 to it), normalised, so the bit vectors and their Hamming
distances look like the real model's and agree with the text. Stored with
``put_source`` of the store exactly as the indexer stores files.
"""

from __future__ import annotations

import collections
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from deskmind.core.memory.models import NewChunk, SourceDraft
from deskmind.core.memory.backend import open_memory
from deskmind.core.memory.store import text_hash

CHUNKS_PER_SOURCE = 50
NOISE = 0.032  # per dimension; |noise| ~ 0.63 for 384-d, so cosine to the seed ~ 0.85
FORMAT = 2  # bump when the generated corpus changes, so cached DBs are rebuilt


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_']+")
TOPIC_CHUNKS = 4
TOPIC_SHARE = 0.6


class WordSampler:
    def __init__(self, texts: list[str], rng: np.random.Generator, vocab: int = 60_000) -> None:
        self.tokens = [[w.lower() for w in _WORD.findall(t)] or ["empty"] for t in texts]
        counts = collections.Counter(w for toks in self.tokens for w in toks)
        words, freq = zip(*counts.most_common(vocab))
        self.words = np.array(words, dtype=object)
        p = np.array(freq, dtype=np.float64)
        self.p = p / p.sum()
        self.rng = rng

    def chunks(self, n: int, lo: int = 80, hi: int = 180, topic: int | None = None) -> list[str]:
        """``n`` chunks; with ``topic`` (an index into the real texts) most words come from
        that text and its next few neighbours."""
        lens = self.rng.integers(lo, hi + 1, n)
        idx = self.rng.choice(len(self.words), size=int(lens.sum()), p=self.p)
        background = self.words[idx]
        bag = None
        if topic is not None:
            bag = np.array([w for t in self.tokens[topic:topic + TOPIC_CHUNKS] for w in t], dtype=object)
        out, pos = [], 0
        for k in lens:
            words = background[pos:pos + k].copy()
            pos += k
            if bag is not None:
                own = self.rng.random(k) < TOPIC_SHARE
                words[own] = bag[self.rng.integers(0, len(bag), int(own.sum()))]
            out.append(" ".join(words))
        return out


def noisy_vectors(seeds: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    m = seeds[rows] + rng.standard_normal((len(rows), seeds.shape[1])).astype(np.float32) * NOISE
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def build(path: Path, n: int, texts: list[str], seeds: np.ndarray, model_id: str,
          log: Callable[[str], None] = print, seed: int = 1) -> float:
    """Create a SQLite memory of ``n`` chunks at ``path``; returns chunks stored per second."""
    if path.parent.exists():
        shutil.rmtree(path.parent)
    path.parent.mkdir(parents=True)
    with open_memory(path) as store:
        rate = fill(store, n, texts, seeds, model_id, log, seed)
        store.writer.transaction(lambda conn: conn.execute("PRAGMA optimize"))
    return rate


def drafts(n: int, texts: list[str], seeds: np.ndarray, seed: int = 1,
           first_source: int = 0) -> Iterator[tuple[SourceDraft, dict[str, np.ndarray]]]:
    """``n`` chunks as sources of :data:`CHUNKS_PER_SOURCE` chunks, each with its vectors by
    text hash (what ``put_source`` takes); the same ``seed`` gives the same corpus."""
    rng = np.random.default_rng(seed)
    sampler = WordSampler(texts, rng)
    done = 0
    while done < n:
        k = min(CHUNKS_PER_SOURCE, n - done)
        topic = int(rng.integers(0, len(seeds) - TOPIC_CHUNKS))
        chunk_texts = sampler.chunks(k, topic=topic)
        vecs = noisy_vectors(seeds, topic + rng.integers(0, TOPIC_CHUNKS, k), rng)
        sid = first_source + done // CHUNKS_PER_SOURCE
        yield SourceDraft(
            uri=f"/bench/docs/{sid // 1000:04d}/doc{sid:07d}.txt", kind="text",
            title=f"doc {sid}", content_hash=f"{sid:064x}", size=sum(map(len, chunk_texts)),
            mtime=1.7e9 + sid, text="\n\n".join(chunk_texts), extractor="bench",
            chunks=[NewChunk(text=t, locator={"para": i}) for i, t in enumerate(chunk_texts)],
        ), {text_hash(t): v for t, v in zip(chunk_texts, vecs)}
        done += k


def fill(store, n: int, texts: list[str], seeds: np.ndarray, model_id: str,
         log: Callable[[str], None] = print, seed: int = 1) -> float:
    """Store ``n`` synthetic chunks through ``store.put_source`` (either backend); returns
    chunks stored per second."""
    t0 = time.perf_counter()
    idx = store.ensure_active_index(model_id, seeds.shape[1])
    done = 0
    for draft, vecs in drafts(n, texts, seeds, seed):
        store.put_source(draft, idx, vecs)
        done += len(draft.chunks)
        if done % 50_000 == 0 or done == n:
            log(f"    {done}/{n} chunks stored ({done / (time.perf_counter() - t0):.0f}/s)")
    return n / (time.perf_counter() - t0)


def write_tree(root: Path, files: int, words_per_file: int, texts: list[str], seed: int = 2) -> None:
    """``files`` plain-text files of real-word text in folders of 100."""
    rng = np.random.default_rng(seed)
    sampler = WordSampler(texts, rng)
    body = sampler.chunks(files, words_per_file, words_per_file)
    for i, text in enumerate(body):
        d = root / f"d{i // 100:04d}"
        if i % 100 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_text(text + "\n", encoding="utf-8")


def ingest_files(root: Path, texts: list[str], files: int, chunks_per_file: int) -> int:
    """Files of real text paragraphs of ~180 words (one chunk each). Returns chunk count."""
    words = " ".join(texts).split()
    need = 180
    pos = 0
    n = 0
    root.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        paras = []
        for _ in range(chunks_per_file):
            if pos + need > len(words):
                pos = 0
            paras.append(" ".join(words[pos:pos + need]))
            pos += need
            n += 1
        (root / f"doc{f:04d}.txt").write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    return n
