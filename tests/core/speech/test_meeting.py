"""The meeting recorder on the virtual sound server: "me" from the microphone, "others" from
the monitor of the default sink, live transcription, memory, minutes, a full disk."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from deskmind.core.speech import Speech
from deskmind.core.speech.segments import DiskFullError
from tests.core.speech.conftest import heard, words
from tests.core.speech.minutes_writer import MinutesWriter
from tests.fakes.audio import MIC_SINK, SPEAKER_SINK, speech_wav

ME = "I will send the slides to the whole team by Friday."
OTHERS = "The garden party moved to next Saturday afternoon."


def _speech(core, whisper_engine, sd, **kw) -> Speech:
    s = Speech(core, engine=whisper_engine, sd=sd, **kw)
    s.settings.meeting_segment_s = 3.0
    s.settings.flush_interval_s = 0.5
    return s


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_meeting_records_both_sides_transcribes_live_and_saves(core, whisper_engine, sd, pulse, speech_dir):
    live = []
    speech = _speech(core, whisper_engine, sd, complete=MinutesWriter())
    rec = speech.meeting_recorder(on_segment=live.append)
    meeting_id = rec.start(title="Planning")
    assert set(rec._captures) == {"me", "others"}
    assert rec._captures["others"].device_name == f"{SPEAKER_SINK}.monitor"
    for cap in rec._captures.values():
        assert cap.wait_first_block(5)
    others = pulse.play(speech_wav(speech_dir, OTHERS), SPEAKER_SINK, wait=False)
    pulse.play(speech_wav(speech_dir, ME), MIC_SINK)
    others.wait(30)
    # Segments close every ~3 s and are transcribed while recording goes on.
    _wait(lambda: rec.status()["transcribed"] >= 2, 30, "live transcription")
    assert live, "no segment was transcribed live"
    st = rec.status()
    assert st["recording"] and st["segments"] >= 2
    result = rec.stop()

    mine = " ".join(s.text for s in result.segments if s.channel == "me")
    theirs = " ".join(s.text for s in result.segments if s.channel == "others")
    assert heard(mine, {"send", "slides", "whole", "team", "friday"}, 3), mine
    assert heard(theirs, {"garden", "party", "moved", "saturday", "afternoon"}, 3), theirs
    assert not words(mine) & {"garden", "party"} and not words(theirs) & {"slides", "team"}

    src = core.store.get_source(result.source_id)
    assert src.kind == "meeting" and src.uri == f"deskmind://meeting/{meeting_id}"
    assert src.title == "Planning"
    locs = [json.loads(r[0]) for r in core.store.sql.query(
        "SELECT locator FROM chunks WHERE source_id = ?", (src.id,))]
    assert locs and all("start" in l and "end" in l for l in locs)
    hit = core.searcher().search("garden party", limit=1).hits[0]
    assert hit.source_id == src.id and hit.locator["start"] >= 0

    minutes = core.store.get_source(result.minutes_id)
    assert minutes.kind == "minutes" and minutes.parent_id == src.id
    item = result.minutes.action_items[0]
    assert " will " in item.text.lower() and item.owner == "I"  # due dates: see test_minutes
    assert item.at and any(abs(item.at[0] - s.start) < 1 for s in result.segments if s.channel == "me")

    folder = Path(src.metadata["audio_folder"])
    assert folder.exists() and len(src.metadata["audio_files"]) >= 2
    receipt = speech.forget(src.id)
    assert receipt.derived_sources == 1 and not folder.exists()
    assert core.store.get_source(result.minutes_id) is None


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_without_a_language_model_only_the_transcript_is_saved(core, whisper_engine, sd, pulse, speech_dir):
    speech = _speech(core, whisper_engine, sd)
    speech.settings.system_audio = False
    rec = speech.meeting_recorder()
    rec.start()
    assert set(rec._captures) == {"me"}
    rec._captures["me"].wait_first_block(5)
    pulse.play(speech_wav(speech_dir, ME), MIC_SINK)
    result = rec.stop()
    assert result.minutes is None and result.minutes_id is None
    assert any("no language model" in w for w in result.warnings)
    assert heard(" ".join(s.text for s in result.segments), {"send", "slides", "team", "friday"}, 3)
    assert [s.kind for s in core.store.list_sources()] == ["meeting"]


def test_system_audio_from_a_named_loopback_device(core, whisper_engine, sd, pulse):
    """macOS/Windows style: "others" is an input device (here ALSA's pulse device)."""
    speech = _speech(core, whisper_engine, sd, system_source=lambda: None)
    speech.settings.system_device = "pulse"
    rec = speech.meeting_recorder()
    rec.start()
    try:
        assert set(rec._captures) == {"me", "others"}
        assert rec._captures["others"].device_name == "pulse"
        assert rec._captures["others"].wait_first_block(5)
    finally:
        rec.stop()


def test_no_system_audio_source_is_said_not_hidden(core, whisper_engine, sd, pulse):
    speech = _speech(core, whisper_engine, sd, system_source=lambda: None)
    rec = speech.meeting_recorder()
    rec.start()
    assert set(rec._captures) == {"me"}
    result = rec.stop()
    assert any("system audio is not recorded" in w for w in result.warnings)


def test_a_system_source_that_does_not_exist_is_reported_and_the_mic_still_records(
        core, whisper_engine, sd, pulse):
    speech = _speech(core, whisper_engine, sd)
    speech.settings.system_source = "no-such-sink.monitor"
    rec = speech.meeting_recorder()
    rec.start()
    assert set(rec._captures) == {"me"}
    result = rec.stop()
    assert any("system audio is not recorded" in w and "no-such-sink.monitor" in w
               and "system_source" in w for w in result.warnings), result.warnings


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       check=True, capture_output=True, text=True, timeout=10)
    except (subprocess.CalledProcessError, OSError) as exc:
        msg = getattr(exc, "stderr", "") or str(exc)
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root and mount permission): {msg.strip()}")


def test_disk_that_fills_mid_meeting_stops_cleanly_and_keeps_what_was_written(
        core, whisper_engine, sd, pulse, speech_dir):
    audio_dir = core.paths.audio_dir
    _mount_tmpfs(audio_dir, "200k")  # ~3 s of two 16 kHz channels
    try:
        speech = _speech(core, whisper_engine, sd)
        speech.settings.meeting_segment_s = 2.0
        failed = threading.Event()
        errors = []
        rec = speech.meeting_recorder(on_error=lambda e: (errors.append(e), failed.set()))
        rec.start()
        rec._captures["me"].wait_first_block(5)
        pulse.play(speech_wav(speech_dir, "Water the tomatoes in the garden."), MIC_SINK)
        assert failed.wait(30), "the full disk was not noticed"
        assert isinstance(errors[0], DiskFullError) and "full" in str(errors[0])
        result = rec.stop()
        assert result.source_id is not None
        assert any("full" in w for w in result.warnings)
        # What was written before the disk filled was transcribed (tiny.en may mangle a word).
        assert heard(" ".join(s.text for s in result.segments), {"water", "tomatoes", "garden"}, 2)
        kept = [Path(f) for f in result.audio_files]
        assert kept and all(f.exists() and f.stat().st_size > 44 for f in kept)
        src = core.store.get_source(result.source_id)
        assert any("full" in w for w in src.metadata["warnings"])
    finally:
        subprocess.run(["umount", "-l", str(audio_dir)], check=False)
