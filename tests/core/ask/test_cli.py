"""The command line: first run with no configuration, JSON shape, Ctrl-C, route --explain,
egress/audit listings, secrets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from deskmind.cli.main import main

from tests.core.ask.conftest import add_note
from tests.core.memory.helpers import home_memory
from tests.fakes.llm_server import FakeLLMServer, Faults, Reply


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(not port_free(11434), reason="port 11434 is taken (a real Ollama?)")
@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_first_run_answers_from_local_ollama_with_zero_egress(core, capsys, deskmind_home):
    """No config at all: Ollama on its usual port answers; nothing leaves the machine."""
    add_note(core, "The boiler was serviced on 3 March 2025 by Heatwell.", "personal", "Boiler")
    core.close()
    assert not (deskmind_home / "config" / "routing.toml").exists()
    with FakeLLMServer(port=11434, models=["llama3.2:3b"], reply=Reply("In March [1].")) as srv:
        code, out, _ = run_cli(capsys, "ask", "when was the boiler serviced?", "--json")
        body = srv.chat_requests()[0].json()
    assert code == 0
    res = json.loads(out)
    assert res["answer"] == "In March [1]."
    assert res["route"]["provider"] == "ollama" and res["route"]["model"] == "llama3.2:3b"
    assert res["route"]["zone"] == "machine" and res["route"]["rule"] == "local-first"
    assert res["route"]["reason"]
    assert res["citations"][0]["source"].startswith("deskmind://note/")
    assert {"chunk_id", "source", "locator"} <= set(res["citations"][0])
    assert {"retrieve_ms", "route_ms", "prompt_ms", "first_token_ms", "total_ms"} <= set(res["timings"])
    assert "Heatwell" in body["messages"][-1]["content"] and body["options"]["num_ctx"] >= 4096
    code, out, _ = run_cli(capsys, "egress", "--json")
    assert json.loads(out) == []
    # the exchange is in memory as a conversation, as private as its strictest input
    with home_memory(deskmind_home) as store:
        convs = [s for s in store.list_sources() if s.kind == "conversation"]
        assert len(convs) == 1 and convs[0].privacy == "private"
        n = store.sql.query_one("SELECT count(*) FROM egress_ledger")[0]
        assert n == 0


def test_no_server_running_uses_embedded_model_or_says_what_to_do(core, capsys, monkeypatch):
    from deskmind.core.runtimes.llamacpp import llama_available

    monkeypatch.setenv("DESKMIND_DISCOVER", "")
    core.close()
    code, out, err = run_cli(capsys, "ask", "What is the capital of France?", "--no-memory", "--json")
    if not llama_available():
        assert code == 7 and "no model may answer" in err and "ollama serve" in err
        return
    # the embedded llama.cpp runtime (Gemma 3 270M) answers in-process, with no egress
    res = json.loads(out)
    assert code == 0 and res["route"]["provider"] == "embedded" and res["route"]["zone"] == "machine"
    assert res["answer"].strip()  # sampled at the default temperature: content varies
    assert json.loads(run_cli(capsys, "egress", "--json")[1]) == []


def test_route_explain_shows_rule_and_what_would_be_sent(core, capsys, monkeypatch):
    add_note(core, "Secret recipe: add cardamom.", "secret", "Recipe")
    add_note(core, "Recipe notes: bake at 180 degrees.", "personal", "Baking")
    core.close()
    with FakeLLMServer(models=["m:1b"]) as srv:
        monkeypatch.setenv("DESKMIND_DISCOVER", f"box=ollama@127.0.0.1:{srv.port}")
        code, out, _ = run_cli(capsys, "route", "--explain", "recipe baking", "--json")
        code2, out2, _ = run_cli(capsys, "route", "--explain", "recipe baking")
        assert srv.chat_requests() == []  # explaining sends nothing
    d = json.loads(out)
    assert code == 0 and d["rule"] == "local-first" and d["candidates"][0]["provider"] == "box"
    assert d["would_send"]["leaves_machine"] is False
    assert "cardamom" not in json.dumps(d["would_send"])  # above quick-ask's memory ceiling
    assert "180 degrees" in json.dumps(d["would_send"]["messages"])
    assert "rule:    local-first" in out2 and "stays on this machine" in out2


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_route_explain_gives_the_exact_size_of_the_body_ask_then_sends(core, capsys, monkeypatch, kind):
    import hashlib

    add_note(core, "Recipe notes: bake at 180 degrees for 25 minutes.", "personal", "Baking")
    core.close()
    with FakeLLMServer(models=["m:1b"], context_length=8192, reply=Reply("At 180 [1].")) as srv:
        monkeypatch.setenv("DESKMIND_DISCOVER", f"box={kind}@127.0.0.1:{srv.port}")
        for _ in range(3):
            # Discovery gives a loopback server half a second: on a loaded machine the fake
            # can miss it, which is not what this test is about.
            code, out, _ = run_cli(capsys, "route", "--explain", "how long do I bake?", "--json")
            if "would_send" in json.loads(out):
                break
        assert code == 0 and srv.chat_requests() == []
        for _ in range(3):
            code, _, _ = run_cli(capsys, "ask", "how long do I bake?", "--no-save", "--json")
            if code == 0:
                break
        assert code == 0
        sent = srv.chat_requests()[0].body
    w = json.loads(out)["would_send"]
    assert w["bytes"] == len(sent) and w["sha256"] == hashlib.sha256(sent).hexdigest()
    assert "180 degrees" in json.dumps(w["messages"])


def test_ctrl_c_cancels_cleanly_and_saves_nothing(deskmind_home, tmp_path):
    reply = Reply(" ".join(f"w{i}" for i in range(400)))
    with FakeLLMServer(reply=reply, faults=Faults(token_delay=0.05)) as srv:
        env = {**os.environ, "DESKMIND_DISCOVER": f"box=ollama@127.0.0.1:{srv.port}",
               "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "deskmind", "ask", "tell me", "--no-memory"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        first = proc.stdout.read(2)  # wait for streamed tokens
        assert first == b"w0"[:len(first)] and first
        proc.send_signal(signal.SIGINT)
        t = time.monotonic()
        code = proc.wait(timeout=10)
        stopped_in = time.monotonic() - t
        err = proc.stderr.read().decode()
    assert code == 130 and "cancelled" in err and "Traceback" not in err
    assert stopped_in < 3
    with home_memory(deskmind_home) as store:
        assert [s for s in store.list_sources() if s.kind == "conversation"] == []


def test_egress_and_audit_listings_empty(capsys):
    assert run_cli(capsys, "egress")[1].strip() == "no request has left this machine"
    assert run_cli(capsys, "audit")[1].strip() == "no agent has called a tool"
    assert json.loads(run_cli(capsys, "audit", "--json")[1]) == []


def test_secrets_set_without_keyring_says_so_and_never_echoes_the_key(capsys, monkeypatch):
    import io

    key = "sk-never-show-this-1234567890"
    monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
    code, out, err = run_cli(capsys, "secrets", "set", "openai")
    assert code == 6 and "no OS keyring" in err and "DESKMIND_OPENAI_API_KEY" in err
    assert key not in out + err


def test_models_lists_discovered_runtimes(capsys, monkeypatch):
    with FakeLLMServer(models=["llama3.2:3b", "nomic-embed-text"]) as a, FakeLLMServer(models=["qwen"]) as b:
        monkeypatch.setenv("DESKMIND_DISCOVER", f"ollama=ollama@127.0.0.1:{a.port},lms=openai@127.0.0.1:{b.port}")
        code, out, _ = run_cli(capsys, "models", "--json")
        rows = {r["provider"]: r for r in json.loads(out) if r["kind"] != "llamacpp"}
        assert code == 0 and rows["ollama"]["models"] == ["llama3.2:3b", "nomic-embed-text"]
        assert rows["ollama"]["loaded"] == ["llama3.2:3b"] and rows["lms"]["zone"] == "machine"
        code, out, _ = run_cli(capsys, "models")
        assert "llama3.2:3b  (loaded)" in out and "lms" in out


@pytest.mark.parametrize("answer", ["y", "n"])
def test_cli_asks_on_the_terminal_before_running_a_command(deskmind_home, answer):
    import pty
    import select

    from tests.fakes.llm_server import has_tool_result

    def script(body):
        if has_tool_result(body):
            res = [m["content"] for m in body["messages"] if m.get("role") == "tool"]
            return Reply("RESULT " + res[0].replace("\n", " "))
        return Reply("", tool_calls=[("run_command", {"command": "echo tool-ran"})])

    with FakeLLMServer(script=script) as srv:
        cfg = deskmind_home / "config"
        cfg.mkdir(parents=True, exist_ok=True)
        (cfg / "routing.toml").write_text(f"""
[providers.local]
kind = "ollama"
url = "{srv.url}"
[[rules]]
name = "local"
zones = ["machine"]
[agents.quick-ask]
memory_ceiling = "none"
tools = ["run_command"]
shell = true
""")
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "deskmind", "ask", "run it", "--tools", "--no-save"],
                                stdin=slave, stdout=subprocess.PIPE, stderr=slave,
                                env={**os.environ, "DESKMIND_DISCOVER": ""})
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 30
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 4096)
        assert b"Allow quick-ask to run: echo tool-ran? [y/N]" in seen
        os.write(master, answer.encode() + b"\n")
        out = proc.communicate(timeout=30)[0].decode()
        os.close(master)
    assert proc.returncode == 0
    if answer == "y":
        assert "RESULT exit 0 tool-ran" in out
    else:
        assert "RESULT REFUSED: the person did not approve running this command" in out


class _MemoryKeyring:
    """A keyring backend held in memory, set through keyring's own API."""

    @staticmethod
    def make():
        from keyring.backend import KeyringBackend

        class Backend(KeyringBackend):
            priority = 1
            store: dict = {}

            def get_password(self, service, username):
                return self.store.get((service, username))

            def set_password(self, service, username, password):
                self.store[(service, username)] = password

            def delete_password(self, service, username):
                self.store.pop((service, username))

        return Backend()


def test_secrets_status_for_a_provider_says_whether_a_key_is_stored_never_the_key(capsys, monkeypatch):
    import io

    import keyring

    before = keyring.get_keyring()
    keyring.set_keyring(_MemoryKeyring.make())
    try:
        monkeypatch.delenv("DESKMIND_OPENAI_API_KEY", raising=False)
        code, out, _ = run_cli(capsys, "secrets", "status", "openai")
        assert code == 1 and "openai: no key stored" in out and "deskmind secrets set openai" in out
        key = "sk-status-never-shown-0987654321"
        monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
        assert run_cli(capsys, "secrets", "set", "openai")[0] == 0
        code, out, err = run_cli(capsys, "secrets", "status", "openai")
        assert code == 0 and out.strip() == "openai: a key is stored (keyring)"
        assert key not in out + err
        monkeypatch.setenv("DESKMIND_MISTRAL_API_KEY", "env-key-not-shown")
        code, out, _ = run_cli(capsys, "secrets", "status", "mistral")
        assert code == 0 and "environment DESKMIND_MISTRAL_API_KEY" in out and "env-key-not-shown" not in out
        code, _, err = run_cli(capsys, "secrets", "status", "bad name!")
        assert code != 0 and "not a provider name" in err
    finally:
        keyring.set_keyring(before)


def test_secrets_status_for_a_provider_without_keyring_names_the_variable(capsys, monkeypatch):
    monkeypatch.delenv("DESKMIND_OPENAI_API_KEY", raising=False)
    code, out, _ = run_cli(capsys, "secrets", "status", "openai")
    assert code == 1 and out.startswith("openai: no key; no OS keyring") and "DESKMIND_OPENAI_API_KEY" in out
