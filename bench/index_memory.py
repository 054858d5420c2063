"""Peak RSS of ``deskmind index`` over its idle peak, per large input, before and after
streaming (chunks made, embedded and staged a batch at a time).

Each variant runs in a fresh data folder with the venv's Python: "after" is this tree, "before"
is ``--before REF`` (default: the commit before chunking became lazy) unpacked with
``git archive`` into a temporary folder and put first on ``PYTHONPATH``. Per variant: an idle
run on a one-line note (memory opened, embedder loaded), then one run per input. The inputs
(tests/core/ingest/large_inputs.py) are large in bytes and chunks but made of a few hundred
distinct paragraphs, so the real embedder has little to do and the figures are about
everything else. Peak RSS is ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a small wrapper.

    .venv/bin/python bench/index_memory.py [--before REF] [--only after] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.core.ingest.large_inputs import write_large  # noqa: E402

INPUTS = {  # name -> (shape, MB of text); the .gz inflates past the 16 MB text budget
    "notes.txt": ("text", 15),
    "handbook.md": ("markdown", 8),
    "table.csv": ("csv", 8),
    "server.log.txt.gz": ("text", 40),
}

_MEASURE = r"""
import json, resource, subprocess, sys, time
t0 = time.monotonic()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"code": r.returncode, "out": r.stdout, "err": r.stderr[-2000:],
                  "seconds": time.monotonic() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _default_before() -> str:
    out = subprocess.run(["git", "log", "--format=%H", "-1", "--grep=Chunk text lazily by offsets"],
                         cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return f"{out}^" if out else "HEAD"


def _unpack(ref: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "archive", ref, "app"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "app"


def _run(path: Path, env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "deskmind", "index", str(path),
           "--json", "--no-progress", "--no-transcribe"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    run = json.loads(res.stdout)
    if run["code"] != 0:
        raise SystemExit(f"deskmind index {path} failed: {run['err']}")
    run["summary"] = json.loads(run["out"])
    return run


def _variant(name: str, app: Path | None, files: dict[str, Path], work: Path) -> dict[str, dict]:
    home = work / f"home-{name}"
    home.mkdir()
    env = dict(os.environ, DESKMIND_HOME=str(home))
    env.pop("DESKMIND_DB", None)
    if app is not None:
        env["PYTHONPATH"] = str(app) + os.pathsep + env.get("PYTHONPATH", "")
    where = subprocess.run([sys.executable, "-c", "import deskmind; print(deskmind.__file__)"],
                           env=env, capture_output=True, text=True).stdout.strip()
    print(f"# {name}: deskmind from {where}", flush=True)
    note = work / f"idle-{name}" / "note.md"
    note.parent.mkdir()
    note.write_text("# Idle\nOne line, so the command opens memory and loads the embedder.\n")
    _run(note, env)  # the first run prepares the model cache of this data folder: not idle
    note.write_text("# Idle\nOne line, so the command opens memory and loads the embedder (again).\n")
    out = {"idle": _run(note, env)}
    print(f"{name:6} idle{'':18} peak {out['idle']['peak_mb']:6.0f} MB", flush=True)
    for label, path in files.items():
        run = _run(path, env)
        out[label] = run
        s = run["summary"]
        print(f"{name:6} {label:22} peak {run['peak_mb']:6.0f} MB  over idle "
              f"{run['peak_mb'] - out['idle']['peak_mb']:6.0f} MB  {run['seconds']:6.1f} s  "
              f"{s['chunks']:6d} chunks  load {os.getloadavg()[0]:.1f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default=None, help="git ref of the code to compare with")
    ap.add_argument("--only", choices=["before", "after"], default=None)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every input's size")
    ap.add_argument("--distinct", type=int, default=60, help="distinct paragraphs per input")
    args = ap.parse_args()
    print(f"load before: {os.getloadavg()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="deskmind-bench-index-memory-"))
    try:
        inputs = work / "inputs"
        inputs.mkdir()
        files = {}
        for label, (shape, mb) in INPUTS.items():
            files[label] = write_large(inputs / label, mb * args.scale, shape, distinct=args.distinct)
            print(f"input {label}: {files[label].stat().st_size / 2**20:.1f} MB on disk, "
                  f"{mb * args.scale:.0f} MB of text", flush=True)
        results: dict[str, dict] = {}
        # Both variants run at once (each its inputs one after another): peak RSS does not
        # depend on speed, and the comparison is made under the same load.
        jobs = {}
        with ThreadPoolExecutor(2) as pool:
            if args.only != "after":
                ref = args.before or _default_before()
                print(f"# before = {ref}", flush=True)
                jobs["before"] = pool.submit(_variant, "before", _unpack(ref, work), files, work)
            if args.only != "before":
                jobs["after"] = pool.submit(_variant, "after", None, files, work)
            for name, job in jobs.items():
                results[name] = job.result()
        if len(results) == 2:
            print("\ninput                   over idle before / after (MB)   ratio")
            for label in files:
                b = results["before"][label]["peak_mb"] - results["before"]["idle"]["peak_mb"]
                a = results["after"][label]["peak_mb"] - results["after"]["idle"]["peak_mb"]
                print(f"{label:22} {b:8.0f} / {a:6.0f}{'':16} {b / max(a, 1):5.1f}x")
        print(f"load after: {os.getloadavg()}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
