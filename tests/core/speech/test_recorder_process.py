"""The detached recorder behind `deskmind meeting start|stop|status|recover`, killed or not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deskmind.core.speech import Speech
from deskmind.core.speech.segments import MeetingFolder
from tests.core.speech.conftest import heard
from tests.core.speech.minutes_writer import MinutesWriter
from tests.fakes.llm_server import FakeLLMServer, Reply, last_user_text
from tests.fakes.audio import MIC_SINK, speech_wav

FIRST = "The first topic is the new office in Berlin."
SECOND = "The second topic is the holiday schedule for December."


def _cli(home: Path, pulse, *args: str, timeout: float = 120,
         runtime: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "DESKMIND_HOME": str(home), "PULSE_SERVER": pulse.env["PULSE_SERVER"],
           "DESKMIND_DISCOVER": runtime}
    return subprocess.run([sys.executable, "-m", "deskmind", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _settings(home: Path) -> None:
    p = home / "config" / "settings.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("[speech]\nmeeting_segment_s = 3.0\nflush_interval_s = 0.5\nsystem_audio = false\n")


def _state(home: Path) -> dict:
    return json.loads((home / "data" / "meeting-recorder.json").read_text())


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sigkill_mid_meeting_then_recover(deskmind_home, core, whisper_engine, pulse, speech_dir):
    _settings(deskmind_home)
    r = _cli(deskmind_home, pulse, "meeting", "start", "--title", "Offsite")
    assert r.returncode == 0, r.stderr
    assert "recording meeting" in r.stdout
    st = _state(deskmind_home)
    pid, folder = st["pid"], Path(st["folder"])

    time.sleep(0.5)
    pulse.play(speech_wav(speech_dir, FIRST), MIC_SINK)
    manifest = lambda: json.loads((folder / "meeting.json").read_text())  # noqa: E731
    _wait(lambda: any(s["closed"] for s in manifest()["segments"]), 20, "a closed segment")
    status = _cli(deskmind_home, pulse, "meeting", "status", "--json")
    assert json.loads(status.stdout)["recording"] is True
    player = pulse.play(speech_wav(speech_dir, SECOND), MIC_SINK, wait=False)
    time.sleep(2.2)  # the recorder is mid-sentence, past a flush or two
    os.kill(pid, signal.SIGKILL)
    player.wait(30)
    _wait(lambda: not Path(f"/proc/{pid}").exists() or
          Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 10, "the kill")
    before = manifest()
    open_segs = [s for s in before["segments"] if not s["closed"]]
    assert before["status"] == "recording" and open_segs

    status = json.loads(_cli(deskmind_home, pulse, "meeting", "status", "--json").stdout)
    assert status["recording"] is False and status["interrupted"] == [folder.name]

    listed = json.loads(_cli(deskmind_home, pulse, "meeting", "recover", "--list", "--json").stdout)
    assert [m["id"] for m in listed] == [folder.name] and listed[0]["title"] == "Offsite"

    speech = Speech(core, engine=whisper_engine)
    found = speech.interrupted_meetings()
    assert [f.id for f in found] == [folder.name]
    result = speech.recover(found[0])
    text = " ".join(s.text for s in result.segments)
    assert heard(text, {"first", "topic", "new", "office", "berlin"}, 4), text
    # The segment still open at the kill is kept up to its last flush.
    assert heard(text, {"second", "topic", "holiday"}, 2), text
    open_file = str(folder / open_segs[-1]["file"])
    assert open_file in result.audio_files and Path(open_file).stat().st_size > 44 + 16000
    assert max(s.end for s in result.segments) > open_segs[-1]["start"]
    assert result.recovered and any("recovered" in w for w in result.warnings)
    assert all(Path(f).exists() for f in result.audio_files) and len(result.audio_files) >= 2
    src = core.store.get_source(result.source_id)
    assert src.kind == "meeting" and src.title == "Offsite"
    assert MeetingFolder.open(folder).data["status"] == "saved"
    assert speech.interrupted_meetings() == []


def test_start_stop_across_invocations(deskmind_home, pulse, speech_dir):
    _settings(deskmind_home)
    # A meeting left behind by a recorder that died: the next start offers to recover it.
    MeetingFolder.create(deskmind_home / "data" / "audio" / "meetings", "left-behind", pid=999999999)
    # Minutes come from a local runtime the routing rules find (an Ollama-protocol server on
    # loopback whose "model" writes minutes JSON from the prompts it is sent). The recorder
    # process that `meeting start` leaves running is the one that writes them.
    writer = MinutesWriter()
    with FakeLLMServer(script=lambda body: Reply(writer("meeting-minutes", last_user_text(body),
                                                        "private"))) as srv:
        runtime = f"ollama=ollama@127.0.0.1:{srv.port}"
        r = _cli(deskmind_home, pulse, "meeting", "start", runtime=runtime)
        assert r.returncode == 0, r.stderr
        assert "1 earlier meeting(s) were interrupted" in r.stderr and "meeting recover" in r.stderr
        again = _cli(deskmind_home, pulse, "meeting", "start")
        assert again.returncode == 2 and "already being recorded" in again.stderr
        time.sleep(0.5)
        pulse.play(speech_wav(speech_dir, FIRST), MIC_SINK)
        stop = _cli(deskmind_home, pulse, "meeting", "stop", "--json", timeout=180, runtime=runtime)
    assert stop.returncode == 0, stop.stderr
    res = json.loads(stop.stdout)
    assert res["source_id"] and res["transcript_segments"] >= 1
    assert res["minutes_id"], res["warnings"]
    assert writer.prompts and "Transcript:" in writer.prompts[0][1]
    found = _cli(deskmind_home, pulse, "search", "office Berlin", "--kind", "meeting", "--json")
    assert json.loads(found.stdout)[0]["source_id"] == res["source_id"]
    minutes = json.loads(_cli(deskmind_home, pulse, "sources", "--kind", "minutes", "--json").stdout)
    assert [(m["id"], m["parent_id"]) for m in minutes] == [(res["minutes_id"], res["source_id"])]
    none = _cli(deskmind_home, pulse, "meeting", "stop")
    assert none.returncode == 2 and "no meeting is being recorded" in none.stderr


def test_recorder_that_loses_its_microphone_saves_and_says_so(deskmind_home, speech_dir):
    from tests.fakes.audio import start_pulse

    _settings(deskmind_home)
    own = start_pulse("dm-pulse-lost-")  # this sound server goes away mid-meeting
    try:
        r = _cli(deskmind_home, own, "meeting", "start")
        assert r.returncode == 0, r.stderr
        folder = Path(_state(deskmind_home)["folder"])
        closed = lambda: sum(s["closed"] for s in json.loads((folder / "meeting.json").read_text())["segments"])  # noqa: E731
        _wait(lambda: closed() >= 1, 30, "a closed segment (the microphone delivers)")
        own.play(speech_wav(speech_dir, FIRST), MIC_SINK)
        played = closed()  # the segment open now holds the end of the speech: wait until it is on disk
        _wait(lambda: closed() > played, 30, "the speech in a closed segment")
        own.kill()
        # Saving includes minutes by the embedded model, decoded under the minutes' schema: on
        # a busy 2-core machine that alone can take a minute.
        _wait(lambda: _state(deskmind_home).get("status") == "saved", 180, "the recorder to save by itself")
        st = _state(deskmind_home)
        assert st["stopped_by"] == "error" and "stopped delivering audio" in st["stop_reason"]
        status = json.loads(_cli(deskmind_home, own, "meeting", "status", "--json").stdout)
        assert status["recording"] is False
        assert status["last_stopped_by_itself"]["source_id"] == st["result"]["source_id"]
        stop = _cli(deskmind_home, own, "meeting", "stop")
        assert stop.returncode == 0 and "stopped by itself" in stop.stderr
        assert f"source {st['result']['source_id']}" in stop.stdout
        assert _cli(deskmind_home, own, "meeting", "stop").returncode == 2  # told once
        found = _cli(deskmind_home, own, "search", "office Berlin", "--kind", "meeting", "--json")
        assert json.loads(found.stdout)[0]["source_id"] == st["result"]["source_id"]
    finally:
        own.close()
