"""`deskmind transcribe`, `deskmind note --file/--record` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from deskmind.cli.main import main
from tests.core.speech.conftest import heard, words
from tests.fakes.audio import MIC_SINK, speech_wav


def test_transcribe_json(speech_dir, capsys):
    wav = speech_wav(speech_dir, "Remember to buy milk and call Alice on Friday.")
    assert main(["transcribe", str(wav), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"milk", "friday"} <= words(out["text"])
    assert out["segments"] and set(out["segments"][0]) == {"start", "end", "text"}
    assert out["segments"][0]["start"] < out["segments"][-1]["end"] <= out["duration"] + 0.01


def test_transcribe_bad_file_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"not audio at all" * 20)
    assert main(["transcribe", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deskmind: cannot read") and "Traceback" not in err[0]


def test_note_record_until_enter(deskmind_home, pulse, speech_dir):
    wav = speech_wav(speech_dir, "Call the plumber tomorrow morning about the kitchen sink.")
    env = {**os.environ, "DESKMIND_HOME": str(deskmind_home), "PULSE_SERVER": pulse.env["PULSE_SERVER"]}
    p = subprocess.Popen([sys.executable, "-m", "deskmind", "note", "--record", "--json"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "press Enter" in p.stderr.readline()
    pulse.play(wav, MIC_SINK)
    out, err = p.communicate("\n", timeout=120)
    assert p.returncode == 0, err
    note = json.loads(out)
    assert heard(note["text"], {"call", "plumber", "tomorrow", "morning", "kitchen", "sink"}, 4), note["text"]
    # How long stop to saved takes is bench/speech.py's to measure; here, that each step ran.
    assert {"capture_stop", "write_audio", "transcribe", "total"} <= set(note["timings_ms"])
    assert note["timings_ms"]["total"] > 0 and os.path.exists(note["audio"])
    assert all({"start", "end", "text"} <= set(s) for s in note["segments"])


def test_forget_from_the_cli_deletes_the_recorded_audio(speech_dir, capsys):
    wav = speech_wav(speech_dir, "Remember to buy milk and call Alice on Friday.")
    assert main(["note", "--file", str(wav), "--json"]) == 0
    note = json.loads(capsys.readouterr().out)
    assert os.path.exists(note["audio"])
    assert main(["forget", str(note["source_id"]), "--json"]) == 0
    receipt = json.loads(capsys.readouterr().out)
    assert receipt["files_removed"] == [note["audio"]] and not os.path.exists(note["audio"])
    assert os.path.exists(wav)
