"""A valid client's latency through the gateway while another local program floods it.

Three phases against one gateway (uvicorn on loopback, the real door, MCP and the API):

1. calm: nothing else going on;
2. idle sockets: a program keeps 300 connections open and silent, opening a new one whenever
   the gateway closes one (head deadline, or room made for a newcomer); then the same with
   more sockets than the gateway keeps (``--over``, 1000 against the default 512), so that it
   churns: every socket it opens closes one of its own;
3. session flood: a granted client with no permissions opens MCP sessions in a loop from four
   threads (its rate limit raised so that the sessions really open).

In each phase the valid client sends ``--requests`` requests one after the other: ``GET
/v1/models`` on a new connection each time (the hardest case for a crowded server) and an MCP
``ping`` in its own session. Printed: p50 and p99 in ms, the ratio to the calm phase, and what
the flooders achieved; with the load average (2 shared cores: wall clock includes waiting).

    python bench/gateway_flood.py [--requests N] [--sockets N] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import selectors
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import load_average  # noqa: E402

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}


def _h(token: str, sid: str | None = None) -> dict[str, str]:
    return {**HEADERS, "authorization": f"Bearer {token}", **({"mcp-session-id": sid} if sid else {})}


def _p(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] * 1000


def hold_idle_sockets(port: int, n: int, ready: Any, stop: Any, out: Any) -> None:
    """Another program: keeps ``n`` silent connections open, replacing each one closed."""
    sel = selectors.DefaultSelector()
    opened = 0
    while not stop.is_set():
        while len(sel.get_map()) < n:
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            opened += 1
        ready.set()
        for key, _ in sel.select(timeout=0.05):
            try:
                data = key.fileobj.recv(4096)  # type: ignore[union-attr]
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
    out.put({"sockets_opened": opened})


def open_sessions(url: str, token: str, ready: Any, stop: Any, out: Any) -> None:
    """Another program: four threads opening MCP sessions as fast as the gateway lets them."""
    import httpx

    codes: dict[int, int] = {}
    lock = threading.Lock()

    def run() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                code = c.post(url + "/mcp", json=INIT, headers=_h(token)).status_code
                with lock:
                    codes[code] = codes.get(code, 0) + 1
                ready.set()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"flood_answers": codes})


class Flooder:
    """Runs one of the functions above in a process of its own (as another program would)."""

    def __init__(self, target: Any, *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.stop, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=target, args=(*args, self.ready, self.stop, self.out))

    def __enter__(self) -> "Flooder":
        self.proc.start()
        if not self.ready.wait(60):
            raise RuntimeError("the flooding process did not get going")
        time.sleep(1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.report = self.out.get(timeout=60)
        self.proc.join(30)


def measure(url: str, token: str, sid: str, n: int) -> dict[str, Any]:
    import httpx

    api, mcp, failures = [], [], 0
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection for each request
    with httpx.Client(timeout=30) as keep, httpx.Client(timeout=30, limits=fresh) as new:
        for _ in range(n):
            t0 = time.perf_counter()
            r = new.get(url + "/v1/models", headers=_h(token))
            api.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            m = keep.post(url + "/mcp", json=ping, headers=_h(token, sid))
            mcp.append(time.perf_counter() - t0)
            failures += (r.status_code != 200) + (m.status_code != 200)
    return {"api_p50_ms": _p(api, 0.5), "api_p99_ms": _p(api, 0.99),
            "mcp_p50_ms": _p(mcp, 0.5), "mcp_p99_ms": _p(mcp, 0.99), "failures": failures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--sockets", type=int, default=300)
    ap.add_argument("--over", type=int, default=1000, help="idle sockets beyond the cap")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    home = tempfile.mkdtemp(prefix="deskmind-bench-flood-")
    os.environ["DESKMIND_HOME"] = home
    import httpx

    from deskmind.core.app import Core
    from deskmind.core.gateway.clients import Scopes
    from deskmind.core.gateway.stack import Gateway, GatewayConfig, HttpServer

    core = Core()
    gw = Gateway(core, GatewayConfig())
    gw.clients.grant("valid", Scopes(read="public", rate=1000, burst=1000))
    gw.clients.grant("hog", Scopes(rate=10_000, burst=10_000))  # no permissions at all
    token, hog = gw.clients.rotate_token("valid"), gw.clients.rotate_token("hog")
    srv = HttpServer(gw.http_app(), port=0).start()
    results: dict[str, Any] = {}
    try:
        with httpx.Client(timeout=30) as c:
            r = c.post(srv.url + "/mcp", json=INIT, headers=_h(token))
            sid = r.headers["mcp-session-id"]
            c.post(srv.url + "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                   headers=_h(token, sid))
        measure(srv.url, token, sid, 20)  # warm up
        results["calm"] = measure(srv.url, token, sid, args.requests)
        table = srv.protocol.connections_table
        for phase, n in (("idle_sockets", args.sockets), ("idle_over_cap", args.over)):
            before = table.evicted
            with Flooder(hold_idle_sockets, srv.port, n) as idle:
                results[phase] = measure(srv.url, token, sid, args.requests)
                results[phase]["connections_open"] = len(table)
            results[phase].update(idle.report, closed_to_make_room=table.evicted - before)
        with Flooder(open_sessions, srv.url, hog) as flood:
            results["session_flood"] = measure(srv.url, token, sid, args.requests)
        results["session_flood"].update(flood.report)
    finally:
        srv.stop()
        core.close()
    results["load"] = load_average()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    calm = results["calm"]
    print(f"valid client, {args.requests} requests per phase ({results['load']})")
    print(f"{'phase':<15}{'API p50':>9}{'p99':>9}{'MCP p50':>9}{'p99':>9}  vs calm (p50)  failures")
    for phase in ("calm", "idle_sockets", "idle_over_cap", "session_flood"):
        r = results[phase]
        ratio = (f"API x{r['api_p50_ms'] / calm['api_p50_ms']:.2f}, "
                 f"MCP x{r['mcp_p50_ms'] / calm['mcp_p50_ms']:.2f}")
        print(f"{phase:<15}{r['api_p50_ms']:>9.1f}{r['api_p99_ms']:>9.1f}{r['mcp_p50_ms']:>9.1f}"
              f"{r['mcp_p99_ms']:>9.1f}  {ratio:<14}  {r['failures']}")
    for phase, n in (("idle_sockets", args.sockets), ("idle_over_cap", args.over)):
        idle = results[phase]
        print(f"{phase} (holding {n}): {idle['sockets_opened']} opened by the program, "
              f"{idle['connections_open']} open while measuring, "
              f"{idle['closed_to_make_room']} closed to make room")
    print(f"session flood: answers to the flooder {results['session_flood']['flood_answers']}")


if __name__ == "__main__":
    main()
