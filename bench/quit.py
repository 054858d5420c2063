"""Quit time of the real app process, idle and while a model streams, under Xvfb.

    python bench/quit.py [--runs 10]

Each run starts `deskmind gui --no-hotkeys` on a private X display with a fresh home. In the
"start-up" scenario it is quit as soon as its palette is built (the start-up warm-up still
imports in a worker, and the interpreter's exit waits for that import); "idle" quits it once
start-up work is over (--settle seconds later); in "streaming" a question is typed into the
palette (real key events) and answered slowly by a loopback Ollama-protocol server, and the app
is quit while tokens arrive. Quitting is SIGTERM, the path
the tray's Quit, Ctrl-C and the session take. Measured: from the signal to the process's exit
(median, max) and how many runs exited cleanly (status 0, every quit step finished, no
unawaited coroutine, unretrieved task error, forced exit or traceback in the log).

Prints a table with the load average and writes bench/out/quit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui.test_ask_ui import rules  # noqa: E402
from tests.ui.xharness import AppProcess, XSession, missing_tools  # noqa: E402

BAD = ("was never awaited", "Task exception was never retrieved", "AsyncLibraryNotFoundError",
       "Task was destroyed but it is pending", "exiting now", "Traceback", "Fatal Python error",
       "going on without it", "no time left")

def one_run(x: XSession, url: str, scenario: str, settle_s: float) -> tuple[float, bool, str]:
    from deskmind.core.config.paths import Paths
    from deskmind.ui.single_instance import send_message, server_name

    home = Path(tempfile.mkdtemp(prefix="dm-quit-"))
    (home / "config").mkdir(parents=True)
    (home / "config" / "routing.toml").write_text(rules(url, paste=False))
    app = AppProcess(x, home, args=("--no-hotkeys",)).start()
    try:
        app.wait_for(lambda s: s["palette"]["built"], timeout=60, what="palette built")
        if scenario == "idle":
            time.sleep(settle_s)
        if scenario == "streaming":
            send_message(server_name(Paths.from_env(app.env).data_dir), {"cmd": "activate"})
            app.wait_for(lambda s: s["palette"]["visible"] and s["palette"]["input_focus"], timeout=10,
                         what="palette focus")
            x.xdotool("type", "--delay", "8", "tell me everything")
            x.xdotool("key", "Return")
            app.wait_for(lambda s: s["palette"]["answer"].count("slowly") >= 3, timeout=30, what="streaming")
        t0 = time.monotonic()
        app.proc.send_signal(signal.SIGTERM)
        code = app.proc.wait(60)
        seconds = time.monotonic() - t0
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.wait(5)
    log = app.log.read_text(errors="replace")
    shutil.rmtree(home, ignore_errors=True)
    why = [b for b in BAD if b in log]
    if code != 0:
        why.insert(0, f"exit status {code}")
    if "quit: closed" not in log:
        why.append("no ordered quit")
    return seconds, not why, "; ".join(why)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--settle", type=float, default=8.0, help="seconds idle before quitting (idle)")
    args = ap.parse_args()
    if missing_tools():
        print(f"needs {', '.join(missing_tools())}", file=sys.stderr)
        return 2
    from PySide6.QtCore import QCoreApplication

    from tests.fakes.llm_server import FakeLLMServer, Faults, Reply

    _qapp = QCoreApplication([])  # the status socket's client needs one
    results: dict[str, dict] = {}
    with FakeLLMServer(reply=Reply("slowly " * 400), faults=Faults(token_delay=0.1)) as srv:
        x = XSession(tray=False).start()
        try:
            for scenario in ("start-up", "idle", "streaming"):
                times, clean, notes = [], 0, []
                for _ in range(args.runs):
                    s, ok, why = one_run(x, srv.url, scenario, args.settle)
                    times.append(s)
                    clean += ok
                    if why:
                        notes.append(why)
                results[scenario] = {"runs": args.runs, "median_s": statistics.median(times),
                                     "max_s": max(times), "clean": clean, "problems": notes}
        finally:
            x.stop()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 shared cores)")
    print(f"{'scenario':<10} {'runs':>4} {'median s':>9} {'max s':>7} {'clean':>6}")
    for name, r in results.items():
        print(f"{name:<10} {r['runs']:>4} {r['median_s']:>9.2f} {r['max_s']:>7.2f} {r['clean']:>6}")
        for p in r["problems"]:
            print(f"  problem: {p}")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "quit.json").write_text(json.dumps({"load": load, **results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
