"""Core tests never reach past this machine.

Every stream socket's connect (and every datagram sent) to an address that is not loopback is
refused on the spot, so nothing leaves, and the test fails at teardown even when the code under
test swallowed the error (discovery, a fallback chain). A test that must reach one of this
machine's own non-loopback addresses says so with ``network_guard.allow_own(address)``.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

import pytest


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name: resolving it could already leave the machine


class NetworkGuard:
    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.allowed: set[str] = set()

    def allow_own(self, host: str) -> None:
        """Allow one of this machine's own addresses (only those can be bound)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))  # fails for any address that is not this machine's
        self.allowed.add(host)

    def check(self, sock: socket.socket, address: Any, what: str) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
            return
        host = str(address[0])
        if _is_loopback(host) or host in self.allowed:
            return
        self.attempts.append(f"{what} {host}:{address[1]}")
        raise OSError(errno.ENETUNREACH, f"tests may not reach {host}: it is not loopback")


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Any:
    guard = NetworkGuard()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto = socket.socket.sendto

    def stream_only(sock: socket.socket) -> bool:
        # A datagram socket's connect sends nothing (it only picks a route): its sends are
        # what is checked.
        return sock.type == socket.SOCK_STREAM

    def connect(self: socket.socket, address: Any) -> None:
        if stream_only(self):
            guard.check(self, address, "connect")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if stream_only(self):
            guard.check(self, address, "connect")
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        guard.check(self, args[-1], "sendto")
        return real_sendto(self, data, *args)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    yield guard
    if guard.attempts:
        pytest.fail("the test tried to reach beyond this machine: " + ", ".join(guard.attempts),
                    pytrace=False)
