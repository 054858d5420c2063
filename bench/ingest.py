"""Ingestion benchmark: a generated tree of mixed files (md, txt, py, html, pdf).

Prints, for the first index: files/s, chunks/s, and where the time went (embedding versus
everything else: scanning, reading, parsing, chunking, storing); then the wall time of a
re-index with nothing changed and with 1% of the files changed.

    python bench/ingest.py            # 5,000 files (several minutes: embedding dominates)
    python bench/ingest.py --quick    # 500 files
    python bench/ingest.py --files N --keep DIR
    python bench/ingest.py --boundary # the cost of parser processes on ordinary files

--boundary prints, per kind of ordinary file, ms per file parsed on the calling thread and in
a parser process (one at a time, so the difference is the process boundary: pickling, the
pipe, the wake-ups), the time to start a parser process, and the wall time of indexing a tree
(no embedding) with and without parser processes. One run; the machine's load is printed with
the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("river mountain kettle mirror solar garden ledger invoice meeting budget harvest "
         "lantern compass orchard granite velvet thunder meadow quartz harbor falcon willow "
         "copper saffron glacier beacon tundra canyon prairie walnut juniper cobalt ember "
         "plan review draft report schedule contract patient recipe journey lesson chapter "
         "measure estimate deliver improve repair collect observe compare explain record "
         "quickly carefully slowly early late often never always together apart nearby").split()
MIX = (("md", 30), ("txt", 20), ("py", 25), ("html", 20), ("pdf", 5))


def sentence(rnd: random.Random, n: int | None = None) -> str:
    words = [rnd.choice(WORDS) for _ in range(n or rnd.randint(8, 18))]
    return " ".join(words).capitalize() + f" {rnd.randint(0, 10**6)}."


def paragraph(rnd: random.Random, words: int) -> str:
    out, n = [], 0
    while n < words:
        s = sentence(rnd)
        out.append(s)
        n += len(s.split())
    return " ".join(out)


def make_file(path: Path, ext: str, rnd: random.Random) -> None:
    if ext == "md":
        body = f"## {sentence(rnd, 3)[:-1]}\n\n{paragraph(rnd, rnd.randint(60, 150))}"
        path.write_text(f"# {sentence(rnd, 4)}\n\n{body}\n")
    elif ext == "txt":
        path.write_text(paragraph(rnd, rnd.randint(80, 170)) + "\n")
    elif ext == "py":
        funcs = []
        for n in range(rnd.randint(1, 2)):
            name = f"{rnd.choice(WORDS)}_{rnd.choice(WORDS)}_{n}"
            doc = paragraph(rnd, rnd.randint(20, 60))
            funcs.append(f"def {name}(value, factor={rnd.randint(1, 9)}):\n    \"\"\"{doc}\"\"\"\n"
                         f"    total = value * factor\n    return total + {rnd.randint(0, 99)}\n")
        path.write_text('"""' + sentence(rnd) + '"""\n\nimport math\n\n\n' + "\n\n".join(funcs))
    elif ext == "html":
        paras = "".join(f"<p>{paragraph(rnd, rnd.randint(40, 70))}</p>" for _ in range(2))
        path.write_text(f"<html><head><title>{sentence(rnd, 4)}</title><script>var x=1;</script></head>"
                        f"<body><nav><a href='/'>Home</a></nav><main><h1>{sentence(rnd, 3)}</h1>{paras}"
                        f"</main><footer>footer</footer></body></html>")
    elif ext == "pdf":
        from fpdf import FPDF

        pdf = FPDF()
        pdf.set_font("helvetica", size=11)
        for _ in range(rnd.randint(1, 2)):
            pdf.add_page()
            pdf.multi_cell(0, 6, paragraph(rnd, rnd.randint(80, 150)))
        path.write_bytes(bytes(pdf.output()))


def make_tree(root: Path, n_files: int, seed: int = 7) -> list[Path]:
    rnd = random.Random(seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    paths = []
    for i in range(n_files):
        ext = kinds[i % len(kinds)]
        d = root / f"dir{i // 200:03d}" / f"sub{(i // 20) % 10}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"file{i:05d}.{ext}"
        make_file(p, ext, rnd)
        paths.append(p)
    return paths


def boundary(n_files: int, as_json: bool) -> int:
    from deskmind.core.ingest.budget import Budget, run_metered
    from deskmind.core.ingest.extractors import builtin_file_types
    from deskmind.core.ingest.indexer import Indexer
    from deskmind.core.ingest.workers import ParserPool
    from deskmind.core.memory.store import MemoryStore

    work = Path(tempfile.mkdtemp(prefix="deskmind-bench-boundary-"))
    out: dict = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    try:
        paths = make_tree(work / "tree", n_files)
        types, budget = builtin_file_types(), Budget()
        t0 = time.perf_counter()
        pool = ParserPool(1, 1024)
        pool.run(types.lookup(Path("a.txt")).extractor, Path("a.txt"), b"warm up", budget)
        out["parser_start_ms"] = round(pool.stats.start_s[0] * 1000, 1)
        out["parser_start_and_first_file_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        with ParserPool(1, 1024) as again:  # the fork server (where there is one) is up now
            again.run(types.lookup(Path("a.txt")).extractor, Path("a.txt"), b"warm up", budget)
        out["parser_start_method"] = pool.method
        out["parser_next_start_ms"] = round(again.stats.start_s[0] * 1000, 1)
        per_kind: dict = {}
        with pool:
            for ext in sorted({p.suffix for p in paths}):
                files = [(p, p.read_bytes()) for p in paths if p.suffix == ext]
                extract = types.lookup(files[0][0]).extractor
                pool.run(extract, files[0][0], files[0][1], budget)  # the parser's imports, once
                run_metered(extract, files[0][0], files[0][1], budget)
                t0 = time.perf_counter()
                for p, data in files:
                    run_metered(extract, p, data, budget)
                here = (time.perf_counter() - t0) / len(files) * 1000
                t0 = time.perf_counter()
                for p, data in files:
                    pool.run(extract, p, data, budget)
                there = (time.perf_counter() - t0) / len(files) * 1000
                per_kind[ext[1:]] = {"files": len(files), "in_process_ms": round(here, 2),
                                     "parser_process_ms": round(there, 2), "boundary_ms": round(there - here, 2),
                                     "isolated_by_default": types.lookup(files[0][0]).isolate}
        out["per_file"] = per_kind
        for label, memory in (("index_in_process_s", None), ("index_parser_processes_s", 1024)):
            store = MemoryStore(work / f"{label}.db")
            try:
                t0 = time.perf_counter()
                s = Indexer(store, None, transcriber=None, parser_memory_mb=memory).index([work / "tree"])
                out[label] = round(time.perf_counter() - t0, 2)
                assert s.count("indexed") == len(paths), s.to_dict()
            finally:
                store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if as_json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"load average {out['load_average']}; {len(paths)} ordinary files")
    print(f"parser process start ({out['parser_start_method']}): first {out['parser_start_ms']} ms "
          f"({out['parser_start_and_first_file_ms']} ms with its first file), then "
          f"{out['parser_next_start_ms']} ms")
    print(f"{'kind':6} {'files':>5} {'in process':>11} {'in a parser':>12} {'boundary':>9}  (ms per file)")
    for kind, k in out["per_file"].items():
        tag = "" if k["isolated_by_default"] else "  (stays in process)"
        print(f"{kind:6} {k['files']:>5} {k['in_process_ms']:>11} {k['parser_process_ms']:>12} "
              f"{k['boundary_ms']:>9}{tag}")
    print(f"indexing the tree without embedding: {out['index_in_process_s']} s in process, "
          f"{out['index_parser_processes_s']} s with parser processes")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--quick", action="store_true", help="500 files")
    ap.add_argument("--keep", type=Path, help="build the tree and database here and keep them")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--boundary", action="store_true",
                    help="the cost of parsing in a parser process, per ordinary file (default 500 files)")
    args = ap.parse_args()
    n_files = 500 if args.quick else args.files
    if args.boundary:
        return boundary(500 if args.files == 5000 else args.files, args.json)
    work = args.keep or Path(tempfile.mkdtemp(prefix="deskmind-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["DESKMIND_HOME"] = str(work / "home")
    from deskmind.core.app import Core

    tree = work / "tree"
    t0 = time.perf_counter()
    paths = sorted(tree.rglob("file*")) if tree.exists() else make_tree(tree, n_files)
    print(f"tree: {len(paths)} files under {tree} (made in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    out: dict = {"files": len(paths)}
    try:
        with Core() as core:
            core.embedder()  # load the model outside the timed runs
            idx = core.indexer()
            t0 = time.perf_counter()
            first = idx.index([tree])
            wall = time.perf_counter() - t0
            chunks = first.to_dict()["chunks"]
            tm = first.timings
            embed = tm.get("embed", 0.0)
            other = wall - embed
            out["first_index"] = {
                "wall_s": round(wall, 2), "indexed": first.count("indexed"),
                "failed": first.count("failed"), "chunks": chunks,
                "files_per_s": round(first.count("indexed") / wall, 1),
                "chunks_per_s": round(chunks / wall, 1),
                "embed_s": round(embed, 2), "not_embedding_s": round(other, 2),
                "not_embedding_share_of_embedding": round(other / embed, 3) if embed else None,
                "parse_cpu_s": round(tm.get("parse_cpu", 0.0), 2), "store_s": round(tm.get("store", 0.0), 2),
                "scan_s": round(tm.get("scan", 0.0), 3),
            }
            # Re-index with nothing changed: a fresh indexer, as a new `deskmind index` would use.
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                again = core.indexer().index([tree])
                times.append(time.perf_counter() - t0)
            assert again.count("unchanged") == len(paths), again.to_dict()
            out["reindex_unchanged_s"] = round(min(times), 3)
            out["reindex_unchanged_s_per_5000"] = round(min(times) / len(paths) * 5000, 3)
            # 1% changed.
            rnd = random.Random(99)
            changed = rnd.sample([p for p in paths if p.suffix != ".pdf"], max(1, len(paths) // 100))
            for p in changed:
                with open(p, "a") as fh:
                    fh.write("\n\n" + sentence(rnd) + "\n")
            t0 = time.perf_counter()
            s = core.indexer().index([tree])
            out["reindex_1pct_changed"] = {"wall_s": round(time.perf_counter() - t0, 3),
                                           "reindexed": s.count("indexed"),
                                           "embedded_chunks": s.embedded_chunks}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    f = out["first_index"]
    print(f"files: {out['files']}")
    print(f"first index: {f['wall_s']} s, {f['indexed']} files indexed ({f['failed']} failed), "
          f"{f['chunks']} chunks: {f['files_per_s']} files/s, {f['chunks_per_s']} chunks/s")
    print(f"  embedding {f['embed_s']} s; everything else {f['not_embedding_s']} s = "
          f"{f['not_embedding_share_of_embedding'] * 100:.1f}% of the embedding time (target <= 20%)")
    print(f"  (parse CPU over worker threads {f['parse_cpu_s']} s, store {f['store_s']} s, scan {f['scan_s']} s)")
    print(f"re-index, nothing changed: {out['reindex_unchanged_s']} s "
          f"({out['reindex_unchanged_s_per_5000']} s per 5,000 files; target <= 1 s)")
    c = out["reindex_1pct_changed"]
    print(f"re-index, 1% changed: {c['wall_s']} s ({c['reindexed']} files re-indexed, "
          f"{c['embedded_chunks']} chunks embedded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
