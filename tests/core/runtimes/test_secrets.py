"""API keys: keyring only, redacted from logs and errors."""

from __future__ import annotations

import io
import logging

import pytest

from deskmind.core.secrets import (
    NoKeyringError, RedactionFilter, SecretStore, install_redaction, redact, remember_secret,
)
from tests.fakes.keyring import (
    MemoryKeyring, have_secret_service, keyring_module, run_with_secret_service,
)


def test_keys_live_in_the_keyring_only(deskmind_home):
    kr = MemoryKeyring()
    store = SecretStore(keyring_module(kr), environ={})
    store.set("openai", "  sk-abcdefghijklmnop1234  \n")
    assert kr.data == {("deskmind", "openai"): "sk-abcdefghijklmnop1234"}
    assert store.get("openai") == "sk-abcdefghijklmnop1234"
    assert store.delete("openai") and not store.delete("openai")
    assert store.get("openai") is None
    # nothing was written under DESKMIND_HOME
    assert not [p for p in deskmind_home.rglob("*") if p.is_file()]
    with pytest.raises(Exception, match="not a provider name"):
        store.set("../etc", "sk-zzzzzzzzzzzzzzzz")


def test_no_backend_is_said_clearly_with_choices():
    # tests/conftest.py pins PYTHON_KEYRING_BACKEND to the null backend: no keyring here
    store = SecretStore(environ={})
    assert store.describe_backend() == "none"
    with pytest.raises(NoKeyringError) as ei:
        store.set("anthropic", "sk-ant-secretvalue123456")
    msg = str(ei.value)
    assert "no OS keyring" in msg and "keyrings.alt" in msg and "DESKMIND_ANTHROPIC_API_KEY" in msg
    assert "sk-ant-secretvalue123456" not in msg
    # the explicit per-run choice
    assert SecretStore(environ={"DESKMIND_ANTHROPIC_API_KEY": "sk-ant-fromenv1234567"}).get("anthropic") \
        == "sk-ant-fromenv1234567"


def test_log_redaction_filter_scrubs_keys_everywhere():
    remember_secret("my-very-private-token-42")
    buf = io.StringIO()
    logger = logging.getLogger("deskmind.test.redaction")
    logger.propagate = False
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    install_redaction(logger)
    assert any(isinstance(f, RedactionFilter) for f in handler.filters)
    logger.warning("calling with %s", "my-very-private-token-42")
    logger.warning("headers: {'authorization': 'Bearer abcdefghijklmnopqrstuv'}")
    logger.warning("openai key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX rejected")
    logger.warning('{"x-api-key": "sk-ant-api03-zzzzzzzzzzzzzzzzzzzz"}')
    logger.warning("client token dmk_yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy was revoked")
    try:
        raise ValueError("bad key my-very-private-token-42")
    except ValueError:
        logger.exception("failed")
    out = buf.getvalue()
    for leaked in ("my-very-private-token-42", "abcdefghijklmnopqrstuv", "ABCDEFGHIJKLMNOPQRSTUVWX",
                   "zzzzzzzzzzzzzzzzzzzz", "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"):
        assert leaked not in out
    assert out.count("[redacted]") >= 6 and "ValueError" in out
    assert redact("nothing secret here") == "nothing secret here"


def test_server_error_echoing_the_key_is_redacted(run):
    from deskmind.core.runtimes.base import ChatRequest, Message, RuntimeHTTPError
    from deskmind.core.runtimes.openai_compat import OpenAICompatRuntime
    from tests.core.runtimes.conftest import transport
    from tests.fakes.llm_server import FakeLLMServer, Faults

    key = "sk-echoedbackbytheserver0001"
    remember_secret(key)
    with FakeLLMServer(faults=Faults(status=401, message=f"Incorrect API key provided: {key}")) as srv:
        rt = OpenAICompatRuntime("sky", transport(srv.url, headers={"authorization": f"Bearer {key}"}))

        async def go():
            async for _ in rt.chat(ChatRequest("fake-model:1b", [Message("user", "hi")])):
                pass

        with pytest.raises(RuntimeHTTPError) as ei:
            run(go())
    assert key not in str(ei.value) and "Incorrect API key" in str(ei.value)
    assert ei.value.retryable is False


@pytest.mark.skipif(not have_secret_service(),
                    reason="needs dbus-run-session, gnome-keyring-daemon and secret-tool")
def test_cli_stores_key_in_a_real_secret_service(tmp_path):
    import sys

    key = "sk-realkeyring-0123456789abc"
    home = tmp_path / "dm"
    deskmind = [sys.executable, "-m", "deskmind"]
    out = run_with_secret_service(
        f"printf '{key}\\n' | {' '.join(deskmind)} secrets set openai\n"
        "secret-tool lookup service deskmind username openai; echo\n"
        f"{' '.join(deskmind)} secrets delete openai\n"
        "secret-tool lookup service deskmind username openai || echo gone\n",
        tmp_path, home)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "stored the key for openai in keyring.backends.SecretService.Keyring"
    assert lines[1] == key  # it really is in the Secret Service
    assert lines[2] == "deleted the key for openai" and lines[-1] == "gone"
    # and nowhere under Deskmind's own folders
    for p in home.rglob("*") if home.exists() else []:
        if p.is_file():
            assert key.encode() not in p.read_bytes()
