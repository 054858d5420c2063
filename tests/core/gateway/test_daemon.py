"""``deskmind serve``: MCP + API + folder watching + backups with no GUI, sharing the DB."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx

from deskmind.core.app import Core
from deskmind.core.gateway.clients import ClientRegistry, Scopes
from deskmind.core.gateway.daemon import BackupScheduler
from tests.core.gateway.mcp_util import data, http_client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not come up")


WRITER = textwrap.dedent("""
    import sys
    from deskmind.core.app import Core
    from deskmind.core.memory.models import SourceDraft, NewChunk
    with Core() as core:
        for i in range(int(sys.argv[1])):
            core.remember(SourceDraft(uri=f"deskmind://note/tray-{i}", kind="note",
                                      text=f"tray app note number {i}", chunks=[NewChunk(f"tray app note number {i}")]))
""")


def test_serve_runs_the_stack_and_shares_the_db_with_another_process(deskmind_home, tmp_path, embedder):
    watched = tmp_path / "vault"
    watched.mkdir()
    (watched / "first.md").write_text("# Compost\nTurn the compost heap every second week.\n")
    cfg = deskmind_home / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "settings.toml").write_text(textwrap.dedent(f"""
        [ingest]
        watch = ["{watched}"]
        watch_debounce_s = 0.3
        [gateway]
        backup_every_hours = 1
        backup_keep = 2
    """))
    with Core() as core:
        reg = ClientRegistry(core.store)
        reg.grant("agent", Scopes(read="private", write=True, ask=True))
        token = reg.rotate_token("agent")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DESKMIND_HOME": str(deskmind_home)}
    proc = subprocess.Popen([sys.executable, "-m", "deskmind", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_healthy(url, proc)
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url + "/v1/models", headers=auth).status_code == 200
        assert httpx.get(url + "/v1/models").status_code == 401

        # The tray app (another process) writes while MCP clients write through the daemon.
        tray = subprocess.Popen([sys.executable, "-c", WRITER, "40"], env=env)

        async def captures():
            async with http_client(url, token) as c:
                saved = await asyncio.gather(*[
                    c.call_tool("capture_note", {"text": f"daemon note number {i}"}) for i in range(20)])
                return [data(s) for s in saved]

        saved = asyncio.run(captures())
        assert tray.wait(timeout=120) == 0
        assert len({s["uri"] for s in saved}) == 20

        # Folder watching: the initial scan, then a file added while serving.
        (watched / "second.md").write_text("# Beans\nSow the runner beans after the last frost.\n")

        async def find(query: str):
            async with http_client(url, token) as c:
                return data(await c.call_tool("search_memory", {"query": query}))["results"]

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any("runner beans" in r["text"] for r in asyncio.run(find("runner beans frost"))):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the watched file never reached memory")
        assert any("compost" in r["text"].lower() for r in asyncio.run(find("compost heap")))

        backups = sorted((deskmind_home / "data" / "backups").glob("deskmind-*.db"))
        assert len(backups) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0, proc.stderr.read()
    with Core() as core:
        n = core.store.sql.query_one(
            "SELECT count(*) FROM sources WHERE uri LIKE ?", ("deskmind://note/%",))[0]
        assert n == 60
        assert core.store.integrity_check() == []
        audit = core.store.sql.query_one(
            "SELECT count(*) FROM gateway_audit WHERE client='agent' AND action='capture_note'")[0]
        assert audit == 20


def test_backups_follow_the_schedule_and_keep_the_newest(core, tmp_path):
    now = [1_800_000_000.0]
    sched = BackupScheduler(core.store, tmp_path / "b", every_s=3600, keep=2, clock=lambda: now[0])
    assert sched.due_in() == 0
    first = sched.run_due()
    assert first is not None and first.exists()
    os.utime(first, (now[0], now[0]))
    assert sched.run_due() is None and 0 < sched.due_in() <= 3600
    made = [first]
    for _ in range(3):
        now[0] += 3601
        p = sched.run_due()
        os.utime(p, (now[0], now[0]))
        made.append(p)
    assert sched.backups() == made[-2:]
    from deskmind.core.memory.store import MemoryStore

    with MemoryStore(made[-1]) as copy:
        assert copy.integrity_check() == []


def test_a_busy_port_is_one_clear_line(deskmind_home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "deskmind", "serve", "--port", str(port), "--no-watch",
                            "--no-backup"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "DESKMIND_HOME": str(deskmind_home)})
    assert r.returncode == 2
    assert f"could not listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
