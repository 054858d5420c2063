"""An HTTP tool server's token is read from the keyring on the executor the caller names (the
desktop app's one keyring thread), not on the event loop's default pool."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from deskmind.core.errors import DeskmindError
from deskmind.core.secrets import SecretStore
from deskmind.core.tools.config import ServerSpec, ToolsConfig
from deskmind.core.tools.registry import ToolServers


class RecordingKeyring:
    """A keyring module's surface (get_keyring, get_password), noting the reading thread."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def get_keyring(self):
        return self

    def get_password(self, service: str, name: str) -> str:
        self.threads.append(threading.current_thread().name)
        return "tool-token"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_token_is_read_on_the_given_executor(tmp_path):
    keyring = RecordingKeyring()
    spec = ServerSpec("remote", transport="http", url=f"http://127.0.0.1:{closed_port()}/mcp", start_timeout=3.0)
    keyring_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyring-only")
    servers = ToolServers(ToolsConfig(servers={"remote": spec}), log_dir=tmp_path,
                          secrets=SecretStore(keyring_module=keyring, environ={}),
                          secrets_executor=keyring_thread)

    async def main() -> None:
        try:
            with pytest.raises(DeskmindError):   # nobody listens there; the token was read first
                await servers.tools("remote")
        finally:
            await servers.aclose()

    try:
        asyncio.run(main())
    finally:
        keyring_thread.shutdown()
    assert keyring.threads and all(t.startswith("keyring-only") for t in keyring.threads), keyring.threads
