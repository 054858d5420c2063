"""Speech through the rest of the stack: routed note clean-up, meeting minutes, dropped audio."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

from deskmind.cli.main import main
from tests.core.speech.conftest import heard
from tests.fakes.audio import speech_wav
from tests.fakes.llm_server import FakeLLMServer, Reply, last_user_text


def test_note_is_cleaned_by_the_local_runtime_the_rules_pick(speech_dir, monkeypatch, capsys):
    wav = speech_wav(speech_dir, "Remember to buy milk and call Alice on Friday.")
    with FakeLLMServer(reply=Reply("Buy milk. Call Alice on Friday.")) as srv:
        monkeypatch.setenv("DESKMIND_DISCOVER", f"ollama=ollama@127.0.0.1:{srv.port}")
        assert main(["note", "--file", str(wav), "--json"]) == 0
        note = json.loads(capsys.readouterr().out)
        sent = [last_user_text(r.json()) for r in srv.chat_requests()]
    assert note["cleaned"] is True and note["text"].startswith("Buy milk. Call Alice on Friday.")
    # The runtime saw the transcript (the clean-up prompt carries it) and nothing left the machine.
    assert len(sent) == 1 and heard(sent[0], {"milk", "alice", "friday"}, 2), sent
    assert main(["egress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_index_transcribes_dropped_audio_with_time_locators(speech_dir, tmp_path, capsys):
    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copy(speech_wav(speech_dir, "The quarterly budget review moves to Thursday afternoon."),
                folder / "memo.wav")
    assert main(["index", str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["by_kind"]["audio"]["indexed"] == 1, summary
    assert main(["search", "budget review", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and hits[0]["source"].endswith("memo.wav")
    loc = hits[0]["locator"]
    assert 0 <= loc["start"] < loc["end"]


def test_a_failed_note_clean_up_logs_one_line_and_the_traceback_only_with_verbose(
        speech_dir, deskmind_home):
    import os
    import socket
    import subprocess
    import sys

    wav = speech_wav(speech_dir, "Remember to buy milk and call Alice on Friday.")
    with socket.socket() as s:  # a port nothing listens on: no runtime can clean up
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DESKMIND_HOME": str(deskmind_home),
           "DESKMIND_DISCOVER": f"ollama=ollama@127.0.0.1:{port}"}
    # Only that dead server may clean up (the embedded model would otherwise step in).
    (deskmind_home / "config").mkdir(parents=True, exist_ok=True)
    (deskmind_home / "config" / "routing.toml").write_text(
        f'[defaults]\ndiscover = false\n\n[providers.dead]\nkind = "ollama"\n'
        f'url = "http://127.0.0.1:{port}"\n\n[classes]\ngeneral = ["dead:llama3"]\n'
        f'fast = ["dead:llama3"]\ncoder = ["dead:llama3"]\n', encoding="utf-8")

    def run(*flags):
        return subprocess.run([sys.executable, "-m", "deskmind", *flags, "note", "--file", str(wav),
                               "--json"], env=env, capture_output=True, text=True, timeout=240)

    p = run()
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["cleaned"] is False
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in p.stderr, p.stderr
    assert len(lines) == 1 and "clean-up failed" in lines[0], p.stderr
    p = run("-v")
    assert p.returncode == 0 and "Traceback" in p.stderr


def test_clean_up_through_the_router_names_its_model_and_avoids_a_switched_off_one(core, deskmind_home):
    """core.complete says which model answered; a model clean-up was switched off for is left
    out of the route, and with no other model the router says none can answer."""
    import pytest

    from deskmind.core.routing.router import RoutingError
    from deskmind.core.speech.cleanup import CLEAN_TASK

    with FakeLLMServer(reply=Reply("Buy milk.")) as srv:
        (deskmind_home / "config").mkdir(parents=True, exist_ok=True)
        (deskmind_home / "config" / "routing.toml").write_text(
            f'[defaults]\ndiscover = false\n\n[providers.local]\nkind = "ollama"\n'
            f'url = "{srv.url}"\n\n[classes]\ngeneral = ["local:fake-model:1b"]\n'
            f'fast = ["local:fake-model:1b"]\ncoder = ["local:fake-model:1b"]\n', encoding="utf-8")
        answer = core.complete(CLEAN_TASK, "buy milk", "private")
        assert answer == "Buy milk." and answer.model == "local:fake-model:1b" and not answer.structured
        with pytest.raises(RoutingError):
            core.complete(CLEAN_TASK, "buy milk", "private", avoid=frozenset({"local:fake-model:1b"}))
        assert len(srv.chat_requests()) == 1


def test_dictation_clean_up_goes_to_the_local_runtime_as_the_dictation_agent(core, monkeypatch):
    from deskmind.core.speech.dictation import CLEAN_PROMPT, CLEAN_TASK

    said = "um remember to water the tomatoes in the garden"
    with FakeLLMServer(reply=Reply("Remember to water the tomatoes in the garden.")) as srv:
        monkeypatch.setenv("DESKMIND_DISCOVER", f"ollama=ollama@127.0.0.1:{srv.port}")
        # From a worker thread, as dictation calls it (the completion blocks).
        with ThreadPoolExecutor(1) as pool:
            out = pool.submit(core.complete, CLEAN_TASK, CLEAN_PROMPT.format(text=said)).result(120)
        requests = [r.json() for r in srv.chat_requests()]
    assert out == "Remember to water the tomatoes in the garden."
    assert len(requests) == 1 and f"<dictation>\n{said}\n</dictation>" in last_user_text(requests[0])
    assert not requests[0].get("tools")          # the dictation agent has no tools to call
