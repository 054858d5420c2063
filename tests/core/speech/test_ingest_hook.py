"""Audio files that are indexed are transcribed by the speech engine."""

from __future__ import annotations

import json
import shutil

from deskmind.core.ingest import transcribe as hook
from deskmind.core.speech.ingest_hook import LazyMediaTranscriber, install_media_transcriber, media_transcriber
from tests.core.speech.conftest import words
from tests.fakes.audio import speech_wav


def test_indexing_a_folder_transcribes_its_audio(core, whisper_engine, speech_dir, tmp_path):
    from deskmind.core.ingest.indexer import Indexer

    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(speech_wav(speech_dir, "The boiler service is booked for Wednesday."), folder / "memo.wav")
    (folder / "broken.mp3").write_bytes(b"ID3 this is not really an mp3" * 10)
    indexer = Indexer(core.store, core.embedder, transcriber=media_transcriber(whisper_engine))
    summary = indexer.index([str(folder)])
    d = summary.to_dict()
    assert d["indexed"] == 1 and d["failed"] == 1, d
    src = next(s for s in core.store.list_sources() if s.uri.endswith("memo.wav"))
    assert src.kind == "audio" and src.status == "indexed"
    text, loc = core.store.sql.query_one(
        "SELECT text, locator FROM chunks WHERE source_id = ?", (src.id,))
    assert {"boiler", "wednesday"} <= words(text)
    loc = json.loads(loc)
    assert 0 <= loc["start"] < loc["end"]
    bad = next(s for s in core.store.list_sources() if s.uri.endswith("broken.mp3"))
    assert bad.status == "failed" and "cannot read" in bad.error


def test_queued_media_is_transcribed_by_the_cli(deskmind_home, speech_dir, tmp_path, capsys):
    from deskmind.cli.main import main

    saved = hook.get_transcriber()
    hook.set_transcriber(None)
    try:
        folder = tmp_path / "dropped"
        folder.mkdir()
        shutil.copy(speech_wav(speech_dir, "The boiler service is booked for Wednesday."), folder / "memo.wav")
        assert main(["index", str(folder), "--json", "--no-transcribe"]) == 0
        assert json.loads(capsys.readouterr().out)["by_kind"]["audio"] == {"queued": 1}
        assert main(["transcribe", "--queued", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["indexed"] == 1
        assert main(["search", "boiler service", "--json", "--limit", "1"]) == 0
        hit = json.loads(capsys.readouterr().out)[0]
        assert hit["source"].endswith("memo.wav") and "start" in hit["locator"]
    finally:
        hook.set_transcriber(saved)


def test_lazy_transcriber_registers_once():
    saved = hook.get_transcriber()
    hook.set_transcriber(None)
    try:
        assert install_media_transcriber() is True
        assert isinstance(hook.get_transcriber(), LazyMediaTranscriber)
        assert install_media_transcriber() is False  # never replaces one already registered
    finally:
        hook.set_transcriber(saved)
