"""`deskmind serve` and `deskmind mcp` log through the key-redaction filter, uvicorn included."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from deskmind.core.app import Core
from deskmind.core.gateway.clients import ClientRegistry, Scopes
from tests.core.gateway.test_daemon import _free_port

KEY = "sk-proj-PastedIntoTheRulesFile0123456789"

# A key pasted into routing.toml where the keyring entry's name belongs: the rules cannot be
# read, and the error that says so quotes the offending value.
ROUTING = f"""
[providers.sky]
kind = "openai"
url = "https://api.example.com"
key = ["{KEY}"]
"""

SERVE = textwrap.dedent("""
    import logging, os, signal, sys, threading, time
    import httpx
    from deskmind.cli.main import main

    port, token, key = sys.argv[1:4]

    def poke():
        url = f"http://127.0.0.1:{port}"
        for _ in range(1200):
            try:
                httpx.get(url + "/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        # The model list needs the rules: their error (quoting the key) is logged as a warning.
        httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        # uvicorn logs through handlers of its own, e.g. an application error's message.
        logging.getLogger("uvicorn.error").error("Exception in ASGI application: %s", key)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=poke, daemon=True).start()
    sys.exit(main(["serve", "--api", "--port", port, "--no-watch", "--no-backup"]))
""")

MCP = textwrap.dedent("""
    import atexit, logging, sys
    from deskmind.cli.main import main

    client, key = sys.argv[1:3]
    # Logged once the stdio session has ended, through whatever handlers 'mcp' left in place.
    atexit.register(lambda: logging.getLogger("deskmind.core.gateway").warning(
        "a runtime answered: Authorization: Bearer %s", key))
    sys.exit(main(["mcp", "--client", client]))
""")


def _grant(home) -> str:
    with Core() as core:
        reg = ClientRegistry(core.store)
        reg.grant("probe", Scopes(read="public", ask=True))
        return reg.rotate_token("probe")


def test_serve_logs_no_key(deskmind_home):
    (deskmind_home / "config").mkdir(parents=True, exist_ok=True)
    (deskmind_home / "config" / "routing.toml").write_text(ROUTING)
    token = _grant(deskmind_home)
    env = {**os.environ, "DESKMIND_HOME": str(deskmind_home)}
    proc = subprocess.run([sys.executable, "-c", SERVE, str(_free_port()), token, KEY], env=env,
                          capture_output=True, text=True, timeout=300)
    err = proc.stderr
    assert proc.returncode == 0, err
    assert "model list unavailable" in err and "Exception in ASGI application" in err
    assert KEY not in err and token not in err
    assert err.count("[redacted]") >= 2


def test_mcp_logs_no_key(deskmind_home):
    env = {**os.environ, "DESKMIND_HOME": str(deskmind_home)}
    token = "dmk_" + "Q" * 43
    proc = subprocess.run([sys.executable, "-c", MCP, "claude", token], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "a runtime answered" in proc.stderr
    assert token not in proc.stderr and "[redacted]" in proc.stderr
    assert proc.stdout == ""  # stdout is the protocol's alone
