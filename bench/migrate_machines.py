"""How long m050_sources_per_machine takes on a big SQLite memory, and what it costs afterwards.

The migration rebuilds the ``sources`` table (SQLite cannot drop a UNIQUE constraint): every
source row is copied once, its indexes rebuilt, under one write transaction. This builds a memory
as a Deskmind before m050 left it (N file sources with 3 chunks each through the FTS triggers,
plus N/10 notes), then times opening it with this version (the migration runs), and the look-ups
by path that indexing makes afterwards (now by uri *and* machine) against the same look-ups
before.

    .venv/bin/python bench/migrate_machines.py            # 10k and 100k sources
    .venv/bin/python bench/migrate_machines.py --sizes 20000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from deskmind.core.memory import db, migrations  # noqa: E402
from deskmind.core.memory.machine import Machine  # noqa: E402
from deskmind.core.memory.store import MemoryStore  # noqa: E402

HERE = Machine("bench-machine-0001", "bench")


def build_old(path: Path, n: int) -> None:
    names = [name for name, _ in migrations.MIGRATIONS]
    upto = names.index("m050_sources_per_machine")
    conn = db.connect(path)
    try:
        migrations.applied(conn)
        for name, fn in migrations.MIGRATIONS[:upto]:
            conn.execute("BEGIN IMMEDIATE")
            fn(conn)
            conn.execute("INSERT INTO migrations(name, applied_at) VALUES (?, ?)", (name, 0.0))
            conn.execute("COMMIT")
        now = time.time()
        conn.execute("BEGIN")
        rows = [(f"/home/ana/notes/{i // 100:04}/file{i:06}.md", "markdown", f"file {i}", now, now)
                for i in range(n)]
        rows += [(f"deskmind://note/{i:06}", "note", f"note {i}", now, now) for i in range(n // 10)]
        conn.executemany("INSERT INTO sources(uri, kind, title, status, created_at, updated_at) "
                         "VALUES (?, ?, ?, 'indexed', ?, ?)", rows)
        conn.execute("INSERT INTO documents(source_id, text, extractor) "
                     "SELECT id, 'text of ' || uri, 'text' FROM sources")
        for ord_ in range(3):
            conn.execute("INSERT INTO chunks(source_id, ord, text, locator, text_hash, created_at) "
                         f"SELECT id, {ord_}, 'chunk {ord_} of ' || title || ' about boats', '{{}}', "
                         f"'h' || id || '-{ord_}', {now} FROM sources")
        conn.execute("COMMIT")
    finally:
        conn.close()


def lookups(path: Path, uris: list[str], machine: bool) -> float:
    conn = db.connect(path)
    try:
        sql = ("SELECT id FROM sources WHERE uri = ? AND machine = ?" if machine
               else "SELECT id FROM sources WHERE uri = ?")
        best = float("inf")
        for _ in range(5):  # the best of five passes: the first one also reads pages in
            t = time.perf_counter()
            for u in uris:
                conn.execute(sql, (u, HERE.id) if machine else (u,)).fetchone()
            best = min(best, time.perf_counter() - t)
        return best / len(uris) * 1e6
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores shared with other work)")
    with tempfile.TemporaryDirectory(prefix="bench-m050-") as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"old-{n}.db"
            t = time.perf_counter()
            build_old(path, n)
            built = time.perf_counter() - t
            rnd = random.Random(1)
            uris = [f"/home/ana/notes/{i // 100:04}/file{i:06}.md"
                    for i in rnd.sample(range(n), min(n, 5000))]
            before = lookups(path, uris, machine=False)
            size = path.stat().st_size / 1e6
            t = time.perf_counter()
            MemoryStore(path, machine=HERE).close()  # runs m050
            migrated = time.perf_counter() - t
            after = lookups(path, uris, machine=True)
            print(f"{n:>7} file sources + {n // 10} notes, {3 * (n + n // 10)} chunks, "
                  f"{size:.0f} MB (built in {built:.1f} s): m050 {migrated:.2f} s; "
                  f"path look-up (best of 5 passes) {before:.1f} us before, {after:.1f} us after "
                  f"(ratio {after / before:.2f}); load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
