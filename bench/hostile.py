"""The hostile files of the extraction limits, at full size, each indexed beside a good note.

For every file (made on the spot in a temporary folder, never kept): ``deskmind index`` runs in
a fresh process with the default settings (a fresh ``DESKMIND_HOME``), and the script prints its
wall time, the peak RSS of it and its parser processes (``getrusage(RUSAGE_CHILDREN)`` of a
wrapper process that does nothing else), the file's outcome, and whether the good note beside it
was indexed and found by a search. ``--together`` also indexes all of them in one folder.

    python bench/hostile.py                  # every file, one run each (~10 minutes)
    python bench/hostile.py --only gz,html   # some of them
    python bench/hostile.py --together       # also all in one folder
    python bench/hostile.py --json

The files (the sizes of the reports that made these limits necessary):

    gz          a .txt.gz of log lines that inflates to 250 MB
    pdf         a 4,000-page PDF whose pages share one content stream of text
    zip         a DOCX whose zip headers understate document.xml (1 kB said, ~2 GiB real)
    html        an 11 MB page of one million nested <div>s
    docx        a DOCX with a 504 MB document.xml
    text        a plain 49 MB text file (not a parser's case: chunking and embedding)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from common import load_average  # noqa: E402
from tests.core.ingest import hostile_files as hf  # noqa: E402

# Runs the command given; prints its exit code, output, wall time and the peak RSS of it and
# its descendants, which nothing else in this wrapper inflates.
_MEASURE = r"""
import json, resource, subprocess, sys, time
t0 = time.monotonic()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"code": r.returncode, "out": r.stdout, "err": r.stderr[-4000:],
                  "seconds": time.monotonic() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

GOOD = "# Kingfisher\nThe kingfisher dives for minnows at dawn by the old mill race.\n"


MAKERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "gz": ("server.log.gz", lambda p: hf.gzip_of_text(p, inflated_mb=250)),
    "pdf": ("shared.pdf", lambda p: p.write_bytes(hf.shared_stream_pdf(pages=4000, lines=2000))),
    "zip": ("understated.docx", lambda p: p.write_bytes(hf.understated_docx(real_mb=2040))),
    "html": ("deep.html", lambda p: p.write_bytes(hf.nested_divs(1_000_000))),
    "docx": ("huge.docx", lambda p: hf.big_docx(document_mb=504, to=p)),
    "text": ("big.txt", lambda p: hf.big_text(p, 49)),
}


def _index(folder: Path, home: Path) -> dict:
    env = dict(os.environ, DESKMIND_HOME=str(home))
    cmd = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "deskmind", "index", str(folder),
           "--json", "--no-progress", "--no-transcribe"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    run = json.loads(res.stdout)
    found = subprocess.run([sys.executable, "-m", "deskmind", "search", "kingfisher minnows", "--json"],
                           capture_output=True, text=True, env=env, timeout=600)
    try:
        hits = json.loads(found.stdout)
    except ValueError:
        hits = []
    run["good_note_found"] = bool(hits) and Path(hits[0].get("source", "")).name == "kingfisher.md"
    return run


def _outcomes(run: dict) -> dict[str, tuple[str, str]]:
    try:
        summary = json.loads(run["out"])
    except ValueError:
        return {}
    return {Path(o["path"]).name: (o["status"], o["reason"] or "")
            for o in summary.get("partly", []) + summary.get("problems", [])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(MAKERS), help="comma-separated: " + ",".join(MAKERS))
    ap.add_argument("--together", action="store_true", help="also index all of them in one folder")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    kinds = [k for k in args.only.split(",") if k]
    unknown = [k for k in kinds if k not in MAKERS]
    if unknown:
        ap.error(f"unknown file kind(s): {', '.join(unknown)}")
    work = Path(tempfile.mkdtemp(prefix="deskmind-bench-hostile-"))
    rows = []
    try:
        made: dict[str, Path] = {}
        for kind in kinds:
            name, make = MAKERS[kind]
            folder = work / kind
            folder.mkdir()
            (folder / "kingfisher.md").write_text(GOOD)
            t0 = time.monotonic()
            make(folder / name)
            made[kind] = folder / name
            size = (folder / name).stat().st_size
            run = _index(folder, work / f"home-{kind}")
            status, reason = _outcomes(run).get(name, ("indexed", ""))
            rows.append({"file": kind, "name": name, "mb_on_disk": round(size / 2**20, 2),
                         "made_s": round(time.monotonic() - t0 - run["seconds"], 1),
                         "seconds": round(run["seconds"], 1), "peak_mb": round(run["peak_mb"]),
                         "code": run["code"], "status": status, "reason": reason,
                         "good_note_found": run["good_note_found"], "load": load_average()})
            if not args.json:
                r = rows[-1]
                print(f"{kind:5} {r['mb_on_disk']:>7.1f} MB  {r['seconds']:>6.1f} s  peak {r['peak_mb']:>5} MB  "
                      f"exit {r['code']}  note found: {r['good_note_found']}  {r['load']}\n"
                      f"      {status}{': ' + reason if reason else ''}", flush=True)
        if args.together and made:
            folder = work / "together"
            folder.mkdir()
            (folder / "kingfisher.md").write_text(GOOD)
            for path in made.values():
                shutil.move(str(path), folder / path.name)
            run = _index(folder, work / "home-together")
            rows.append({"file": "together", "seconds": round(run["seconds"], 1),
                         "peak_mb": round(run["peak_mb"]), "code": run["code"],
                         "outcomes": _outcomes(run), "good_note_found": run["good_note_found"],
                         "load": load_average()})
            if not args.json:
                r = rows[-1]
                print(f"together: {r['seconds']} s  peak {r['peak_mb']} MB  exit {r['code']}  "
                      f"note found: {r['good_note_found']}  {r['load']}")
                for name, (status, reason) in r["outcomes"].items():
                    print(f"      {name}: {status}{': ' + reason if reason else ''}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps({"files": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
