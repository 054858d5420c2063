"""MCP sessions are bounded per client, expire when idle, and end with the client's grant."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Iterator

import httpx
import pytest

from deskmind.core.gateway.sessions import SessionTable
from deskmind.core.gateway.stack import Gateway, GatewayConfig, HttpServer
from tests.core.gateway.conftest import grant
from tests.core.gateway.mcp_util import data, http_client

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


def _h(token: str, sid: str | None = None) -> dict[str, str]:
    h = {**HEADERS, "authorization": f"Bearer {token}"}
    if sid:
        h["mcp-session-id"] = sid
    return h


def open_session(c: httpx.Client, url: str, token: str) -> str | None:
    """A real MCP session opened with raw HTTP: initialize, then the initialized notice."""
    r = c.post(url + "/mcp", json=INIT, headers=_h(token))
    if r.status_code != 200:
        return None
    sid = r.headers["mcp-session-id"]
    assert c.post(url + "/mcp", json=INITIALIZED, headers=_h(token, sid)).status_code == 202
    return sid


def ping(c: httpx.Client, url: str, token: str, sid: str) -> int:
    return c.post(url + "/mcp", json=PING, headers=_h(token, sid)).status_code


@pytest.fixture
def small(core, memory) -> Iterator[tuple[Gateway, HttpServer]]:
    gw = Gateway(core, GatewayConfig(mcp_sessions_per_client=3, mcp_session_idle_s=1.5))
    srv = HttpServer(gw.http_app(api=False), port=0).start()
    yield gw, srv
    srv.stop()


def test_a_client_past_its_cap_loses_its_least_recently_used_session(small):
    gw, srv = small
    token = grant(gw, "cursor", read="public")
    other = grant(gw, "other", read="public")
    with httpx.Client(timeout=30) as c:
        sids = [open_session(c, srv.url, token) for _ in range(3)]
        assert [ping(c, srv.url, token, s) for s in sids] == [200] * 3
        assert ping(c, srv.url, token, sids[0]) == 200  # sids[1] is now the least recently used
        newer = [open_session(c, srv.url, token) for _ in range(2)]
        alive = {s: ping(c, srv.url, token, s) for s in sids + newer}
        # Another client cannot use (or learn anything about) a session it did not open.
        theirs = ping(c, srv.url, other, sids[0])
    assert alive == {sids[0]: 200, sids[1]: 404, sids[2]: 404, newer[0]: 200, newer[1]: 200}
    assert theirs == 404


def test_an_unused_session_expires(small):
    gw, srv = small
    token = grant(gw, "cursor", read="public")
    with httpx.Client(timeout=30) as c:
        kept, left = open_session(c, srv.url, token), open_session(c, srv.url, token)
        for _ in range(4):
            time.sleep(0.6)
            assert ping(c, srv.url, token, kept) == 200
        assert ping(c, srv.url, token, left) == 404


def _listen(url: str, token: str, sid: str, ended: threading.Event) -> None:
    """The session's GET stream (server-to-client messages), held open until it ends."""
    with httpx.Client(timeout=httpx.Timeout(30, read=60)) as c:
        with c.stream("GET", url + "/mcp", headers=_h(token, sid)) as r:
            assert r.status_code == 200
            for _ in r.iter_bytes():
                pass
    ended.set()


def test_ten_thousand_session_attempts_leave_others_served_and_revoke_frees_them(core, memory):
    gw = Gateway(core, GatewayConfig())  # the defaults: 8 sessions per client
    srv = HttpServer(gw.http_app(api=False), port=0).start()
    # A client with no permissions at all; its rate lets hundreds of the attempts open a
    # session (the rest are refused with 429, which the rate limit is for).
    hog = grant(gw, "hog", rate=40, burst=100)
    calm = grant(gw, "calm", read="public")
    attempts = 10_000
    latencies: list[float] = []

    def flood(n: int) -> tuple[list[str], int]:
        got, limited = [], 0
        with httpx.Client(timeout=30) as c:
            for _ in range(n):
                r = c.post(srv.url + "/mcp", json=INIT, headers=_h(hog))
                if r.status_code == 200:
                    got.append(r.headers["mcp-session-id"])
                else:
                    assert r.status_code == 429, r.text
                    limited += 1
        return got, limited

    async def calm_client() -> list[int]:
        found = []
        async with http_client(srv.url, calm) as c:
            for _ in range(10):
                t0 = time.perf_counter()
                found.append(len(data(await c.call_tool("search_memory", {"query": "tomatoes"}))["results"]))
                latencies.append(time.perf_counter() - t0)
        return found

    try:
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            batches = pool.map(flood, [attempts // 4] * 4)
            time.sleep(1.0)  # the flood is under way
            found = asyncio.run(calm_client())
            results = list(batches)
        flood_s = time.monotonic() - t0
        opened = [s for got, _ in results for s in got]
        time.sleep(100 / 40)  # the hog's rate budget refills (its pings below are not 429)
        with httpx.Client(timeout=30) as c:
            latest = [open_session(c, srv.url, hog) for _ in range(3)]
            earlier = [s for got, _ in results for s in got[-20:]]
            alive = [s for s in latest + earlier if ping(c, srv.url, hog, s) == 200]
        ended = threading.Event()
        listener = threading.Thread(target=_listen, args=(srv.url, hog, latest[-1], ended), daemon=True)
        listener.start()
        time.sleep(0.5)
        t_revoke = time.monotonic()
        gw.clients.revoke("hog")
        assert ended.wait(5), "the revoked client's stream was not ended"
        cut_after = time.monotonic() - t_revoke
        # Granted again with a new token, its old sessions are gone.
        again = grant(gw, "hog", rate=40, burst=100)
        with httpx.Client(timeout=30) as c:
            after = [ping(c, srv.url, again, s) for s in alive]
    finally:
        srv.stop()
    print(f"{len(opened)} of {attempts} attempts opened a session in {flood_s:.1f} s; "
          f"calm worst {max(latencies) * 1000:.0f} ms; stream cut {cut_after:.2f} s")
    assert len(opened) > 200  # sessions really were opened (and closed again)
    assert sum(limited for _, limited in results) + len(opened) == attempts
    assert found == [found[0]] * 10 and found[0] > 0  # the other client was served throughout
    assert max(latencies) < 5.0
    assert set(latest) <= set(alive) and len(alive) <= 8  # at most its cap of them lived
    assert cut_after < 2.0
    assert after == [404] * len(alive)


def test_the_session_table_keeps_busy_sessions_over_idle_ones():
    now = [0.0]
    t = SessionTable(per_client=2, idle_s=10, clock=lambda: now[0])
    assert t.add("a", "x") == [] and t.add("b", "x") == []
    t.begin("a")  # a request (a GET stream) is in flight on a
    assert t.add("c", "x") == ["b"]  # b is idle: it goes before a, though a is older
    t.forget("b")
    now[0] = 11.0
    assert t.expired() == ["c"]  # a is busy: it never expires while its stream is open
    t.end("a")
    now[0] = 22.0
    assert sorted(t.expired()) == ["a", "c"]
    assert t.owner("a") == "x" and t.of("x") == ["a", "c"] and t.clients() == ["x"]
