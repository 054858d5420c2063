"""Recall@10 of the bit-vector prefilter + float re-scoring against exact float search.

    python bench/recall.py                 # >= 20k real chunks, several candidate counts
    python bench/recall.py --chunks 24000 --candidates 100,200,400,800

Real text (stdlib docstrings, /usr/share/doc) embedded by the real model (cached in bench/out/)
is stored through MemoryStore.put_source in a real SQLite file; the searcher is forced onto its
prefilter path (exact_limit=0), with and without the asymmetric re-ranking of the Hamming
candidates (float query against sign bits, over 1% of the index), and compared, query by query, with an exact float search over the
same vectors. Queries: 500 real chunks held out of the index, and the benchmark's natural
language questions embedded as queries.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from deskmind.core.memory import vectors  # noqa: E402
from deskmind.core.memory.models import NewChunk, SourceDraft  # noqa: E402
from deskmind.core.memory.store import MemoryStore, text_hash  # noqa: E402

HELD_OUT = 500
K = 10


def store_corpus(store: MemoryStore, texts: list[str], mat: np.ndarray, model_id: str) -> np.ndarray:
    """Store the chunks 50 to a source; returns the chunk ids in the order of ``texts``."""
    idx = store.ensure_active_index(model_id, mat.shape[1])
    ids: list[int] = []
    for s in range(0, len(texts), 50):
        part = texts[s:s + 50]
        draft = SourceDraft(uri=f"/recall/{s}", kind="text", title=str(s), text="\n\n".join(part),
                            extractor="bench", chunks=[NewChunk(t) for t in part])
        sid = store.put_source(draft, idx, {text_hash(t): v for t, v in zip(part, mat[s:s + 50])})
        ids += [r[0] for r in store.reader().execute(
            "SELECT id FROM chunks WHERE source_id = ? ORDER BY ord", (sid,))]
    return np.array(ids, dtype=np.int64)


def recall_at(searcher: vectors.VectorSearcher, store: MemoryStore, ids: np.ndarray,
              mat: np.ndarray, queries: np.ndarray) -> tuple[float, float, float]:
    """(mean recall@K, worst query's recall, p50 ms) over ``queries``."""
    conn = store.reader()
    idx = vectors.active_index(conn)
    recalls, ms = [], []
    for q in queries:
        truth = set(ids[np.argsort(-(mat @ q), kind="stable")[:K]].tolist())
        t = time.perf_counter()
        got = {cid for cid, _ in searcher.search(conn, idx, q, K)}
        ms.append((time.perf_counter() - t) * 1000)
        recalls.append(len(got & truth) / K)
    return float(np.mean(recalls)), float(np.min(recalls)), float(np.median(ms))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=20_480, help="real chunks to embed/use (>= 20k)")
    ap.add_argument("--candidates", default="50,100,200,400,800,1600")
    ap.add_argument("--subsets", default="5000,10000", help="also measure on smaller prefixes")
    args = ap.parse_args()
    emb = common.make_embedder()
    print(f"recall benchmark - {time.strftime('%H:%M:%S')}, {common.load_average()}", flush=True)
    texts, mat = common.embedded_corpus(emb, 24_000, parts=math.ceil(args.chunks / 1024))
    texts, mat = texts[:args.chunks], mat[:args.chunks]
    rng = np.random.default_rng(3)
    held = rng.choice(len(texts), HELD_OUT, replace=False)
    keep = np.setdiff1d(np.arange(len(texts)), held)
    q_chunks = mat[held]
    q_natural = np.stack([emb.embed_query(q) for q in common.QUERIES])
    cands = [int(c) for c in args.candidates.split(",")]
    sizes = [int(s) for s in args.subsets.split(",") if s] + [len(keep)]
    print(f"{len(keep)} real chunks indexed, {HELD_OUT} held-out chunk queries, "
          f"{len(q_natural)} natural-language queries; recall@{K} against exact float search\n")
    print("| chunks | candidates | re-rank | recall (chunk queries) | worst | recall (questions) | worst | p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="deskmind-recall-") as tmp:
        for n in sizes:
            sub = keep[:n]
            with MemoryStore(Path(tmp) / f"r{n}.db") as store:
                ids = store_corpus(store, [texts[i] for i in sub], mat[sub], emb.model_id)
                for c in cands:
                    for rerank in (False, True):
                        searcher = vectors.VectorSearcher(exact_limit=0, candidates=c, rerank=rerank)
                        r1, w1, t1 = recall_at(searcher, store, ids, mat[sub], q_chunks)
                        r2, w2, t2 = recall_at(searcher, store, ids, mat[sub], q_natural)
                        how = "asymmetric" if rerank else "Hamming only"
                        print(f"| {n} | {c} | {how} | {r1:.4f} | {w1:.1f} | {r2:.4f} | {w2:.1f} | {t1:.2f} |",
                              flush=True)
    print(f"\nfinished {time.strftime('%H:%M:%S')}, {common.load_average()}")


if __name__ == "__main__":
    main()
