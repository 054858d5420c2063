"""Malformed request bodies get a 400, 408 or 413 with a short reason: never a 500, never a
traceback in the log, and the server goes on serving."""

from __future__ import annotations

import logging
import socket
import time
from typing import Iterator

import httpx
import pytest

from deskmind.core.gateway.bodies import json_depth
from deskmind.core.gateway.stack import Gateway, GatewayConfig, HttpServer
from tests.core.gateway.conftest import grant

PATHS = ("/v1/chat/completions", "/v1/embeddings", "/mcp")
CHAT = b'{"model": "general", "messages": [{"role": "user", "content": %s}]}'
BODIES = {
    "nested a million deep": CHAT % (b"[" * 1_000_000 + b"]" * 1_000_000),
    "nested under the recursion limit": CHAT % (b'{"a": ' * 900 + b"1" + b"}" * 900),
    "nested in an MCP request": (b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": '
                                 + b"[" * 5000 + b"]" * 5000 + b"}"),
    "invalid UTF-8": b'{"model": "\xff\xfe", "messages": [{"role": "user", "content": "hi"}]}',
    "wrong types": b'{"model": 5, "messages": "hi", "input": 7, "jsonrpc": 2, "method": [1]}',
    "not JSON": b"{nope",
    "a JSON array": b'[1, 2, 3]',
    "truncated": b'{"model": "general", "messages": [',
}


@pytest.fixture
def served(core, memory) -> Iterator[tuple[HttpServer, str]]:
    gw = Gateway(core, GatewayConfig(max_body_kb=2048))
    token = grant(gw, "cursor", read="public", ask=True)
    srv = HttpServer(gw.http_app(), port=0).start()
    yield srv, token
    srv.stop()


def _headers(token: str) -> dict[str, str]:
    return {"content-type": "application/json", "accept": "application/json, text/event-stream",
            "authorization": f"Bearer {token}"}


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


def _raw(port: int, data: bytes, wait: float = 10.0) -> bytes:
    """Send bytes on a fresh socket; return what comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def _chunked_head(path: str, token: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()


@pytest.mark.parametrize("path", PATHS)
def test_malformed_bodies_get_a_400_with_a_short_reason(served, path, caplog):
    srv, token = served
    caplog.set_level(logging.DEBUG)
    with httpx.Client(timeout=30) as c:
        for name, body in BODIES.items():
            r = c.post(srv.url + path, content=body, headers=_headers(token))
            assert r.status_code == 400, (name, r.status_code, r.text[:300])
            err = r.json()["error"]
            message = err["message"]
            assert 0 < len(message) < 400 and "Traceback" not in message, (name, message)
            if name.startswith("nested"):
                assert "at most 64" in message
        assert c.get(srv.url + "/v1/models", headers=_headers(token)).status_code == 200
    _no_tracebacks(caplog)


@pytest.mark.parametrize("path", PATHS)
def test_broken_chunking_and_bodies_over_the_cap_are_refused_cleanly(served, path, caplog):
    srv, token = served
    caplog.set_level(logging.DEBUG)
    head = _chunked_head(path, token)
    bad_size = _raw(srv.port, head + b"zz\r\nabc\r\n")
    bad_later = _raw(srv.port, head + b'5\r\n{"mod\r\nqq\r\nxx\r\n')
    longer = _raw(srv.port, head + b"3\r\nabcdef\r\n0\r\n\r\n")  # a chunk longer than it says
    over = _raw(srv.port, head + (b"10000\r\n" + b"x" * 0x10000 + b"\r\n") * 33)  # 2112 KiB, no end
    declared = _raw(srv.port, head.replace(b"Transfer-Encoding: chunked", b"Content-Length: 3145728"))
    for answer in (bad_size, bad_later, longer):
        assert answer.startswith(b"HTTP/1.1 400 ") and b"Invalid HTTP request" in answer, answer[:200]
    for answer in (over, declared):
        assert answer.startswith(b"HTTP/1.1 413 ") and b"larger than 2048 KiB" in answer, answer[:200]
    assert httpx.get(srv.url + "/v1/models", headers=_headers(token)).status_code == 200
    _no_tracebacks(caplog)


def test_a_body_that_stops_arriving_gets_408(core, memory, caplog):
    caplog.set_level(logging.DEBUG)
    gw = Gateway(core, GatewayConfig(body_timeout_s=1.0))
    token = grant(gw, "cursor", read="public", ask=True)
    srv = HttpServer(gw.http_app(), port=0).start()
    try:
        t0 = time.monotonic()
        answer = _raw(srv.port, _chunked_head("/v1/chat/completions", token) + b"5\r\n{\"mod\r\n")
        took = time.monotonic() - t0
    finally:
        srv.stop()
    assert answer.startswith(b"HTTP/1.1 408 ") and b"did not arrive within 1 s" in answer
    assert 0.9 < took < 5
    _no_tracebacks(caplog)


def test_json_depth_ignores_brackets_in_strings():
    assert json_depth(b'{"a": "[[[[{{", "b": [1, {"c": [2]}]}') == 4
    assert json_depth(b'"\\"[[[["') == 0
    assert json_depth(b"[" * 100 + b"]" * 100) == 100
    assert json_depth(b"no brackets") == 0
