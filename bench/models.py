"""Model pulls: download throughput from a loopback server, the cost of a resume, GGUF header read.

    .venv/bin/python bench/models.py [--mb 64]

Serves a GGUF of about ``--mb`` megabytes (written with the ``gguf`` package) from a real HTTP
server on 127.0.0.1 with Range and ETag, then measures in one run: a whole pull (download +
sha256 + header check + rename), a pull cut at half and resumed (the two calls summed, and the
ratio to the whole pull), and the median time to read the GGUF header. Prints the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deskmind.core.models import check_gguf  # noqa: E402
from deskmind.core.models.download import PullInterrupted, pull  # noqa: E402
from tests.core.models.test_choice_and_check import write_gguf  # noqa: E402
from tests.core.models.test_download import ModelServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        src = write_gguf(tmp_path / "src" / "bench.gguf", n=args.mb * (1 << 20) // 4)
        data = src.read_bytes()
        srv = ModelServer(data)
        try:
            t0 = time.perf_counter()
            pull(srv.url("bench.gguf"), tmp_path / "whole")
            whole = time.perf_counter() - t0

            srv.cut_after = len(data) // 2
            t0 = time.perf_counter()
            try:
                pull(srv.url("bench.gguf"), tmp_path / "resumed")
            except PullInterrupted:
                pass
            res = pull(srv.url("bench.gguf"), tmp_path / "resumed")
            resumed = time.perf_counter() - t0
            assert res.resumed_from == len(data) // 2
        finally:
            srv.close()
        reads = []
        for _ in range(20):
            t0 = time.perf_counter()
            check_gguf(src)
            reads.append(time.perf_counter() - t0)
    mb = len(data) / 1e6
    print(f"file: {mb:.1f} MB GGUF, loopback HTTP")
    print(f"whole pull: {whole:.2f} s ({mb / whole:.0f} MB/s incl. sha256 + header check)")
    print(f"cut at half + resume: {resumed:.2f} s ({resumed / whole:.2f}x the whole pull)")
    print(f"GGUF header read: median {statistics.median(reads) * 1e3:.2f} ms")
    print(f"load average: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
