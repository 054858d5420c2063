"""Voice notes: from files and from a real (virtual) microphone, into memory and out again."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from deskmind.core.errors import DeskmindError
from deskmind.core.speech.capture import MicrophoneError
from deskmind.core.speech.notes import NoSpeechError, VoiceNoteRecorder
from tests.core.speech.conftest import heard, words
from tests.fakes.audio import MIC_SINK, reinit_sounddevice, speech_wav, start_pulse

NOTE = "Buy new running shoes and book the dentist for Thursday."


def _chunks(core, source_id):
    return [(t, __import__("json").loads(loc)) for t, loc in core.store.sql.query(
        "SELECT text, locator FROM chunks WHERE source_id = ? ORDER BY id", (source_id,))]


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_note_from_file_lands_in_memory_with_times_and_audio(core, speech, speech_dir):
    wav = speech_wav(speech_dir, NOTE)
    note = speech.note_from_file(wav)
    src = core.store.get_source(note.source_id)
    assert src.kind == "note" and src.uri.startswith("deskmind://note/")
    assert {"running", "shoes", "thursday"} <= words(note.text)
    audio = Path(src.metadata["audio_files"][0])
    assert audio.exists() and core.paths.audio_dir in audio.parents
    chunks = _chunks(core, note.source_id)
    assert chunks and all({"start", "end"} <= set(loc) for _, loc in chunks)
    assert chunks[0][1]["start"] < 0.5 and chunks[-1][1]["end"] <= note.transcript.duration + 0.01
    hits = core.searcher().search("dentist appointment", limit=3).hits
    assert hits and hits[0].source_id == note.source_id and "start" in hits[0].locator

    receipt = speech.forget(note.source_id)
    assert str(audio) in receipt.files_removed and not audio.exists()
    assert wav.exists()  # the person's own file is never touched
    assert core.store.get_source(note.source_id) is None


def test_note_is_saved_as_transcribed_first_and_cleaned_up_afterwards(core, whisper_engine, speech_dir):
    """The note is in memory before the model is asked; the clean-up then updates it, keeping
    the transcript apart, and the provenance says it was cleaned and by which model."""
    from deskmind.core.app import Completion
    from deskmind.core.speech import Speech

    calls = []
    asked = threading.Event()
    go_on = threading.Event()

    def complete(task: str, prompt: str, privacy: str, avoid=frozenset()) -> str:
        calls.append((task, privacy, avoid))
        asked.set()
        assert go_on.wait(30)
        said = prompt.rsplit("\n\n", 1)[1]
        return Completion("Shopping: " + said.strip().rstrip(".") + ".", model="fake:tidy")

    s = Speech(core, engine=whisper_engine, complete=complete)
    try:
        note = s.note_from_file(speech_wav(speech_dir, NOTE))
        assert asked.wait(30)
        # Saved as transcribed while the model is still at work.
        src = core.store.get_source(note.source_id)
        assert not note.cleaned and note.text == note.transcript.text and not note.cleanup.done()
        assert src.metadata["cleaned"] is False and src.metadata["cleanup"] == "pending"
        assert core.store.document_text(note.source_id) == note.transcript.text
        go_on.set()
        out = note.wait_for_cleanup(30)
        assert out.status == "cleaned" and out.model == "fake:tidy"
        assert calls == [("clean-note", "private", frozenset())]
        assert note.cleaned and note.text.startswith("Shopping: ")
        src = core.store.get_source(note.source_id)
        assert src.metadata["cleaned"] and src.metadata["cleaned_by"] == "fake:tidy"
        assert src.metadata["cleanup"] == "cleaned" and "shoes" in words(src.metadata["transcript"])
        assert core.store.document_text(note.source_id).startswith("Shopping: ")
        chunks = _chunks(core, note.source_id)
        cleaned = [loc for _, loc in chunks if loc.get("cleaned")]
        assert cleaned == [{"start": 0.0, "end": round(note.transcript.duration, 2), "cleaned": True}]
        assert len(chunks) == len(note.transcript.segments) + 1   # the transcript's chunks stay
    finally:
        go_on.set()
        s.close()

    def broken(task: str, prompt: str, privacy: str, avoid=frozenset()) -> str:
        raise DeskmindError("no local model is running")

    s2 = Speech(core, engine=whisper_engine, complete=broken)
    note2 = s2.note_from_file(speech_wav(speech_dir, NOTE))
    note2.wait_for_cleanup(30)
    s2.close()
    assert not note2.cleaned and "cleanup failed (no local model is running)" in note2.warnings[0]
    assert core.store.get_source(note2.source_id).metadata["cleanup"].startswith("failed: cleanup failed")


def test_a_clean_up_that_loses_or_invents_words_is_not_used(core, whisper_engine, speech_dir):
    """What a model too small for the task does: answer instead of editing, or go on and on."""
    from deskmind.core.speech import Speech

    for answer, why in (("Sure! Here is a cleaned up note for you.", "of the words said"),
                        (lambda said: said + " " + "And then some more words nobody said. " * 12,
                         "characters for")):
        def complete(task: str, prompt: str, privacy: str, avoid=frozenset(), answer=answer) -> str:
            said = prompt.rsplit("\n\n", 1)[1]
            return answer(said) if callable(answer) else answer

        s = Speech(core, engine=whisper_engine, complete=complete)
        note = s.note_from_file(speech_wav(speech_dir, NOTE))
        note.wait_for_cleanup(30)
        s.close()
        assert not note.cleaned and note.text == note.transcript.text
        assert len(note.warnings) == 1 and "the clean-up was not used" in note.warnings[0]
        assert why in note.warnings[0]
        assert not [loc for _, loc in _chunks(core, note.source_id) if loc.get("cleaned")]
        src = core.store.get_source(note.source_id)
        assert src.metadata["cleaned"] is False and why in src.metadata["cleanup"]
        assert src.metadata["cleanup_model"] == "unknown model"


def test_a_model_whose_clean_ups_keep_failing_is_switched_off_once(core, whisper_engine, speech_dir, caplog):
    """After three guard rejections in a row a model is not asked again (the router is told to
    avoid it); the log says so once, and the record holds across restarts."""
    import logging

    from deskmind.core.app import Completion
    from deskmind.core.routing.router import RoutingError
    from deskmind.core.speech import Speech

    asked = []

    def complete(task: str, prompt: str, privacy: str, avoid=frozenset()) -> str:
        if "fake:tiny" in avoid:
            raise RoutingError("no model can answer: the only candidate is avoided")
        asked.append(prompt)
        return Completion("I noticed that the note was not a good idea.", model="fake:tiny")

    wav = speech_wav(speech_dir, NOTE)
    s = Speech(core, engine=whisper_engine, complete=complete)
    outcomes = []
    with caplog.at_level(logging.INFO, logger="deskmind.core.speech.cleanup"):
        for _ in range(5):
            note = s.note_from_file(wav)
            outcomes.append(note.wait_for_cleanup(30))
    s.close()
    assert [o.status for o in outcomes] == ["rejected", "rejected", "rejected", "off", "off"]
    assert [o.switched_off for o in outcomes] == [False, False, True, False, False]
    assert len(asked) == 3
    off = [r for r in caplog.records if "switched off for fake:tiny" in r.getMessage()]
    assert len(off) == 1 and off[0].levelname == "WARNING" and "Settings → Speech" in off[0].getMessage()
    assert len([r for r in caplog.records if "no other model can do it" in r.getMessage()]) == 1
    # The last notes are saved as transcribed, and say clean-up was off.
    meta = core.store.get_source(note.source_id).metadata
    assert meta["cleanup"] == "off: clean-up is off for fake:tiny" and meta["cleaned"] is False
    assert not note.warnings
    # A new start remembers; turning it back on asks the model again.
    again = Speech(core, engine=whisper_engine, complete=complete)
    assert again.cleanup_record.off_models() == {"fake:tiny"}
    assert again.cleanup_record.state()["fake:tiny"]["rejected_in_a_row"] == 3
    again.cleanup_record.turn_on("fake:tiny")
    again.note_from_file(wav).wait_for_cleanup(30)
    again.close()
    assert len(asked) == 4


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_a_note_forgotten_while_it_is_cleaned_up_stays_forgotten(core, whisper_engine, speech_dir):
    from deskmind.core.speech import Speech

    asked = threading.Event()
    go_on = threading.Event()

    def complete(task: str, prompt: str, privacy: str, avoid=frozenset()) -> str:
        asked.set()
        assert go_on.wait(30)
        return prompt.rsplit("\n\n", 1)[1]

    s = Speech(core, engine=whisper_engine, complete=complete)
    try:
        note = s.note_from_file(speech_wav(speech_dir, NOTE))
        assert asked.wait(30)
        s.forget(note.source_id)
        go_on.set()
        assert note.cleanup.result(30).status == "forgotten"
        assert core.store.get_source(note.source_id) is None
        assert core.store.list_sources(kind="note") == []
    finally:
        go_on.set()
        s.close()


# The real 135M model: seconds on an idle 2-core machine, minutes when other work crowds it
# (llama.cpp's two threads wait on each other whenever one is descheduled).
@pytest.mark.timeout(1200)
def test_the_default_model_cleans_up_after_the_note_is_saved(core, whisper_engine, speech_dir, monkeypatch):
    """The bundled SmolLM2 (embedded llama.cpp, through the router) behind clean-up: the note is
    saved before it answers; whatever it answers, the note's provenance and the per-model
    record say what happened."""
    from deskmind.core.speech import Speech

    monkeypatch.setenv("DESKMIND_DISCOVER", "")  # nothing else running: the embedded model
    s = Speech(core, engine=whisper_engine, complete=core.complete)
    try:
        note = s.note_from_file(speech_wav(speech_dir, NOTE))
        assert "cleanup" not in note.timings and note.timings["save"] < 5
        assert core.store.get_source(note.source_id).metadata["cleanup"] == "pending"
        out = note.wait_for_cleanup(900)
    finally:
        s.close()
    assert out.model.startswith("embedded:") and out.status in ("cleaned", "rejected"), out
    meta = core.store.get_source(note.source_id).metadata
    assert meta["cleaned"] is (out.status == "cleaned") and meta["cleanup"].startswith(out.status)
    assert {"running", "shoes"} <= words(meta["transcript"])   # the transcript is kept apart
    state = s.cleanup_record.state().get(out.model, {})
    assert state.get("rejected_in_a_row", 0) == (1 if out.status == "rejected" else 0)
    print(f"clean-up by {out.model}: {out.status} in {out.seconds:.1f} s ({out.reason})")


def test_a_broken_clean_up_record_is_started_afresh(tmp_path, caplog):
    from deskmind.core.speech.cleanup import CleanupRecord

    path = tmp_path / "note-cleanup.json"
    path.write_text('{"models": ["not", "a", "table"]}')
    rec = CleanupRecord(path)
    assert rec.off_models() == frozenset() and "could not be read" in caplog.text
    path.write_bytes(b"{" * (1 << 20 + 1))
    assert CleanupRecord(path).state() == {}
    assert not rec.rejected("m:1", "x") and not rec.rejected("m:1", "x") and rec.rejected("m:1", "x")
    assert CleanupRecord(path).off_models() == {"m:1"}


def test_silent_file_saves_nothing(core, speech, tmp_path):
    import soundfile as sf

    p = tmp_path / "silence.wav"
    sf.write(p, np.zeros(16000 * 2, np.float32), 16000)
    with pytest.raises(NoSpeechError, match="no speech"):
        speech.note_from_file(p)
    assert core.store.list_sources() == []
    assert not list((core.paths.audio_dir / "notes").glob("*"))


def _record(rec: VoiceNoteRecorder, play, seconds_after: float = 0.6):
    rec.start()
    assert rec._capture.wait_first_block(5), "the virtual microphone delivered nothing"
    play()
    time.sleep(seconds_after)
    return rec.stop()


def test_push_to_talk_from_the_virtual_microphone(core, speech, sd, pulse, speech_dir):
    wav = speech_wav(speech_dir, NOTE)
    speech._sd = sd
    levels = []
    rec = speech.voice_note_recorder(on_level=levels.append)
    note = _record(rec, lambda: pulse.play(wav, MIC_SINK))
    assert heard(note.text, {"buy", "new", "running", "shoes", "book", "thursday"}, 4), note.text
    assert max(levels) > 0.05
    src = core.store.get_source(note.source_id)
    audio = Path(src.metadata["audio_files"][0])
    assert audio.exists() and audio.stat().st_size > 16000 * 2 * 2
    assert note.timings["total"] > 0 and "transcribe" in note.timings
    # One recorder, many notes: the same object records again.
    again = _record(rec, lambda: pulse.play(
        speech_wav(speech_dir, "Water the tomatoes in the garden this evening."), MIC_SINK))
    assert heard(again.text, {"water", "tomatoes", "garden", "evening"}, 3), again.text


def test_a_microphone_that_delivers_nothing_is_a_clear_error_and_leaves_nothing(core, speech, sd, pulse, speech_dir):
    """The virtual microphone, suspended in the sound server, opens but delivers no frames:
    stop() ends promptly with a clear error, nothing is saved, no file or thread is left, and
    the same recorder then records a note as usual."""
    from tests.fakes.audio import MIC_SOURCE

    speech._sd = sd
    rec = speech.voice_note_recorder()
    notes_dir = core.paths.audio_dir / "notes"
    pulse.pactl("suspend-source", MIC_SOURCE, "1")
    try:
        rec.start()
        assert rec.recording
        assert not rec._capture.wait_first_block(0.5), "the suspended microphone delivered audio"
        outcome: list[BaseException | object] = []
        stopper = threading.Thread(target=lambda: outcome.append(_raised(rec.stop)), daemon=True)
        stopper.start()
        stopper.join(20)
        assert not stopper.is_alive(), "stop() did not return for a microphone that delivers nothing"
    finally:
        pulse.pactl("suspend-source", MIC_SOURCE, "0")
    err = outcome[0]
    assert isinstance(err, NoSpeechError), err
    assert str(err).startswith("nothing was recorded: the microphone ") and "delivered no audio" in str(err)
    assert not rec.recording and rec.error is None
    assert core.store.list_sources() == []
    assert not notes_dir.exists() or not any(notes_dir.iterdir())
    assert not [t for t in threading.enumerate() if t.name == "capture-microphone"]

    note = _record(rec, lambda: pulse.play(speech_wav(speech_dir, NOTE), MIC_SINK))
    assert heard(note.text, {"buy", "new", "running", "shoes", "book", "thursday"}, 4), note.text
    assert [s.id for s in core.store.list_sources()] == [note.source_id]
    assert sorted(notes_dir.iterdir()) == [note.audio_path]


def _raised(fn) -> BaseException | object:
    try:
        return fn()
    except BaseException as exc:  # noqa: BLE001  (handed to the test thread)
        return exc


def test_missing_microphone_is_a_clear_error(speech, sd):
    speech._sd = sd
    speech.settings.input_device = "no-such-microphone"
    with pytest.raises(MicrophoneError, match="no-such-microphone.*not found.*inputs here"):
        speech.voice_note_recorder().start()


def test_no_sound_server_means_no_microphone(speech, tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nobody-here")
    sd = reinit_sounddevice()
    try:
        speech._sd = sd
        speech.settings.input_device = "pulse"
        with pytest.raises(MicrophoneError):
            speech.voice_note_recorder().start()
    finally:
        monkeypatch.undo()
        reinit_sounddevice()


def test_microphone_that_disappears_mid_note_keeps_what_was_said(core, speech, speech_dir, monkeypatch):
    server = start_pulse("dm-pulse-vanish-")
    monkeypatch.setenv("PULSE_SERVER", server.env["PULSE_SERVER"])
    try:
        speech._sd = reinit_sounddevice()
        errors: list[DeskmindError] = []
        failed = threading.Event()
        rec = speech.voice_note_recorder(on_error=lambda e: (errors.append(e), failed.set()))
        rec.start()
        assert rec._capture.wait_first_block(5)
        server.play(speech_wav(speech_dir, NOTE), MIC_SINK)
        time.sleep(0.6)  # what was played has reached the recorder
        server.kill()
        assert failed.wait(15), "the vanished microphone was not noticed"
        assert isinstance(errors[0], MicrophoneError) and "stopped delivering audio" in str(errors[0])
        note = rec.stop()
        assert heard(note.text, {"buy", "new", "running", "shoes", "book"}, 3), note.text
        assert any("stopped delivering audio" in w for w in note.warnings)
    finally:
        server.close()
        monkeypatch.undo()
        reinit_sounddevice()


def test_forgetting_one_note_leaves_the_other_notes_audio(core, speech, speech_dir):
    a = speech.note_from_file(speech_wav(speech_dir, NOTE))
    b = speech.note_from_file(speech_wav(speech_dir, "Water the tomatoes in the garden this evening."))
    receipt = speech.forget(a.source_id)
    assert receipt.files_removed == [str(a.audio_path)]
    assert not a.audio_path.exists() and b.audio_path.exists()


class _No16kDevices:
    """The real sounddevice module, except that every device refuses 16 kHz (as many USB
    microphones do when no sound server converts for them)."""

    def __init__(self, sd) -> None:
        self._sd = sd

    def __getattr__(self, name):
        return getattr(self._sd, name)

    def InputStream(self, *, samplerate, **kw):  # noqa: N802  (sounddevice's name)
        if int(samplerate) == 16000:
            raise self._sd.PortAudioError("Invalid sample rate [PaErrorCode -9997]")
        return self._sd.InputStream(samplerate=samplerate, **kw)


def test_a_device_without_16k_records_at_its_own_rate_and_is_resampled(core, speech, sd, pulse, speech_dir):
    import soundfile as sf

    speech._sd = _No16kDevices(sd)
    rec = speech.voice_note_recorder()
    note = _record(rec, lambda: pulse.play(speech_wav(speech_dir, NOTE), MIC_SINK))
    info = sf.info(str(note.audio_path))
    assert info.samplerate == int(sd.query_devices(kind="input")["default_samplerate"]) != 16000
    assert heard(note.text, {"buy", "new", "running", "shoes", "book", "thursday"}, 4), note.text
    assert abs(note.transcript.duration - info.duration) < 0.05


class _BusyDevices(_No16kDevices):
    """Every device is held by another program (PortAudio's "Device unavailable")."""

    def InputStream(self, **kw):  # noqa: N802
        raise self._sd.PortAudioError("Error opening InputStream: Device unavailable [PaErrorCode -9985]")


def test_a_busy_microphone_is_a_clear_error(core, speech, sd):
    speech._sd = _BusyDevices(sd)
    with pytest.raises(MicrophoneError, match="could not be opened .*Device unavailable.*another program"):
        speech.voice_note_recorder().start()
    with pytest.raises(MicrophoneError, match="Device unavailable"):
        speech.meeting_recorder().start()
    assert not any(speech.meetings_dir.glob("*")) if speech.meetings_dir.exists() else True


def test_when_transcription_fails_the_recording_is_kept_and_its_place_said(core, sd, pulse, speech_dir):
    from deskmind.core.errors import ModelUnavailableError
    from deskmind.core.speech import Speech, SpeechSettings, TranscriptionEngine

    broken = TranscriptionEngine(SpeechSettings(model_path=str(speech_dir / "no-model-here")))
    speech = Speech(core, sd=sd, engine=broken)
    rec = speech.voice_note_recorder()
    with pytest.raises(ModelUnavailableError, match="the recording is kept at (.+\\.wav)") as info:
        _record(rec, lambda: pulse.play(speech_wav(speech_dir, NOTE), MIC_SINK), 0.2)
    kept = Path(str(info.value).rsplit("kept at ", 1)[1].rstrip(")"))
    assert kept.exists() and kept.stat().st_size > 16000 * 2
    assert core.store.list_sources() == []
    broken.close()
