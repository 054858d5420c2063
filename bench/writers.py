"""One against two concurrent writers on one memory, each writer a process of its own.

    python bench/writers.py --worker LOCATION DATA START_AT    # one writer (started by run())

Each writer stores its share of synthetic sources (text, chunks and vectors given, so no
embedding: this measures the store) through ``put_source``, starting at the same wall-clock
moment as the others, and prints when it started and finished. The rate is all chunks stored
over the time from the first start to the last finish. On PostgreSQL writers run at once (one
transaction each, no writer thread); on SQLite they take turns on the file's write lock.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402

from deskmind.core.memory.backend import open_memory  # noqa: E402


def _worker(location: str, data: str, start_at: float) -> None:
    with open(data, "rb") as f:
        model_id, dim, items = pickle.load(f)
    store = _open(location)
    try:
        idx = store.ensure_active_index(model_id, dim)
        time.sleep(max(0.0, start_at - time.time()))
        t0 = time.time()
        for draft, vecs in items:
            store.put_source(draft, idx, vecs)
        t1 = time.time()
    finally:
        store.close()
    print(json.dumps({"start": t0, "end": t1, "chunks": sum(len(d.chunks) for d, _ in items)}))


def _open(location: str):
    if location.startswith("postgresql://"):
        from deskmind.core.memory.pg.store import PgMemoryStore

        return PgMemoryStore(location)  # the bench server asks for no password
    return open_memory(Path(location))


def run(location_for: Callable[[str], str], writers: int, chunks_each: int, texts: list[str],
        seeds: np.ndarray, model_id: str) -> float:
    """Chunks/s of ``writers`` processes writing ``chunks_each`` chunks each into the fresh
    memory ``location_for(name)`` gives."""
    location = location_for(f"writers{writers}")
    with tempfile.TemporaryDirectory(prefix="deskmind-writers-") as tmp:
        files = []
        for w in range(writers):
            # Disjoint sources per writer (uris and texts differ), as two machines would add.
            items = list(corpus.drafts(chunks_each, texts, seeds, seed=100 + w,
                                       first_source=w * 1_000_000))
            path = Path(tmp) / f"w{w}.pickle"
            path.write_bytes(pickle.dumps((model_id, seeds.shape[1], items)))
            files.append(path)
        if not location.startswith("postgresql://"):
            location = str(Path(tmp) / "memory.db")
            # Created (and migrated) once before the writers race to open it.
            _open(location).close()
        start_at = time.time() + 4.0  # every writer has imported and connected by then
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", location, str(f),
                                   repr(start_at)], stdout=subprocess.PIPE, text=True)
                 for f in files]
        results = []
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"a writer failed (exit {p.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    total = sum(r["chunks"] for r in results)
    return total / (max(r["end"] for r in results) - min(r["start"] for r in results))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        # A helper module of bench/search.py (its writers part), not a benchmark of its own.
        print(__doc__)
        sys.exit(0 if set(sys.argv[1:]) <= {"-h", "--help"} else 2)
