"""Recall of the bit-prefilter search path on real text embedded by the real default model.

bench/recall.py measures it at 20k chunks over many settings; this keeps a smaller, exact
version of that measurement in every test run: the prefilter is forced (``exact_limit=0``) on a
few thousand real chunks and compared with exact float search over the same vectors.
"""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from deskmind.core.memory.store import MemoryStore, text_hash
from deskmind.core.memory.vectors import VectorSearcher
from tests.core.memory.helpers import note

K = 10


def stdlib_docstrings(limit: int) -> list[str]:
    """Distinct docstrings (12-60 words) of the standard library, in a stable order."""
    out: list[str] = []
    seen: set[str] = set()
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if {"site-packages", "test", "tests"} & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                words = (ast.get_docstring(node) or "").split()
                text = " ".join(words[:60])
                if len(words) >= 12 and text not in seen:
                    seen.add(text)
                    out.append(text)
                    if len(out) == limit:
                        return out
    return out


@pytest.fixture(scope="module")
def real_memory(tmp_path_factory: pytest.TempPathFactory, embedder):
    texts = stdlib_docstrings(3100)
    assert len(texts) == 3100
    queries, corpus = texts[:100], texts[100:]           # held-out chunks as queries
    vecs = embedder.embed(corpus)
    store = MemoryStore(tmp_path_factory.mktemp("recall") / "memory.db")
    idx = store.ensure_active_index(embedder.model_id, embedder.dim)
    for i in range(0, len(corpus), 50):
        part = corpus[i:i + 50]
        store.put_source(note(part, uri=f"deskmind://note/{i}"), idx,
                         {text_hash(t): v for t, v in zip(part, vecs[i:i + 50])})
    yield store, idx, embedder.embed(queries)
    store.close()


def recall_at_k(store: MemoryStore, idx, queries: np.ndarray, searcher: VectorSearcher) -> float:
    exact = VectorSearcher(exact_limit=10**9)
    conn = store.reader()
    hits = []
    for q in queries:
        want = {cid for cid, _ in exact.search(conn, idx, q, K)}
        got = {cid for cid, _ in searcher.search(conn, idx, q, K)}
        hits.append(len(want & got) / K)
    return float(np.mean(hits))


def test_bit_prefilter_path_is_in_use_and_keeps_recall(real_memory) -> None:
    store, idx, queries = real_memory
    searcher = VectorSearcher(exact_limit=0)             # the path large indexes take
    assert recall_at_k(store, idx, queries, searcher) >= 0.95
    assert searcher.cache_info()["kind"] == "bits"


def test_reranking_recovers_what_hamming_alone_misses(real_memory) -> None:
    """Few candidates: Hamming distance alone loses neighbours, the asymmetric re-ranking of a
    wider Hamming prefix (float query against sign bits) wins most of them back."""
    store, idx, queries = real_memory
    tight = dict(exact_limit=0, candidates=20, prefilter_share=0.03)
    hamming = recall_at_k(store, idx, queries, VectorSearcher(rerank=False, **tight))
    reranked = recall_at_k(store, idx, queries, VectorSearcher(rerank=True, **tight))
    assert reranked >= 0.9 and reranked > hamming + 0.02, (hamming, reranked)
