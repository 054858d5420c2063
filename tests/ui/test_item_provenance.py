"""The memory browser shows where an item came from as a person reads it, never Python reprs.

Items are saved the way the app saves them (the real note and meeting drafts, the real indexer)
and opened in the real browser window.
"""

from __future__ import annotations

import re
import socket

from deskmind.core.speech.engine import Segment, Transcript
from deskmind.core.speech.storage import meeting_draft, note_draft

REPR = re.compile(r"[{}\[\]]|'\w+':|\bTrue\b|\bFalse\b|\bNone\b")


def shown(qtbot, desktop, source_id: int) -> str:
    b = desktop.show_window("browser")
    b.item_view.item = None
    b.open_source(source_id)
    qtbot.waitUntil(lambda: b.item_view.item is not None and b.item_view.item["source"].id == source_id,
                    timeout=10000)
    return b.item_view.provenance.text().replace("<br>", "\n")


def test_voice_notes_raw_and_cleaned(qtbot, desktop, tmp_path, artifacts):
    audio = tmp_path / "n.wav"
    audio.write_bytes(b"RIFF")
    t = Transcript("buy milk and call ana about the beta", [Segment(0.0, 3.2, "buy milk"),
                                                            Segment(3.2, 67.5, "and call ana about the beta")],
                   duration=67.5)
    raw = desktop.core.remember(note_draft("n1", t, audio, privacy="private", recorded_at=1_700_000_000))
    text = shown(qtbot, desktop, raw)
    assert not REPR.search(text), text
    assert "A voice note recorded in Deskmind" in text
    assert "1:07 long · 2 segments" in text
    assert "Raw transcript (not cleaned up)" in text
    assert f"Recorded on {socket.gethostname()} (this computer)" in text
    assert f"Audio: {audio}" in text
    cleaned = desktop.core.remember(note_draft("n2", t, audio, privacy="private",
                                               cleaned="Buy milk. Call Ana about the beta."))
    text = shown(qtbot, desktop, cleaned)
    assert "Cleaned up by a model" in text and not REPR.search(text), text
    desktop.window("browser").grab().save(str(artifacts / "memory-voice-note.png"))


def test_meeting_channels_and_times(qtbot, desktop, tmp_path):
    segs = [Segment(0.0, 4.0, "welcome everyone", "me"), Segment(4.5, 9.0, "we ship friday", "others")]
    sid = desktop.core.remember(meeting_draft(
        "m1", segs, title="Weekly sync", started_at=1_700_000_000, duration=125.0,
        audio_files=[str(tmp_path / "me.flac"), str(tmp_path / "others.flac")], privacy="private",
        extra={"audio_folder": str(tmp_path), "warnings": ["no language model is set up for minutes"],
               "channels": {"me": 125.0, "others": 124.6}}))
    text = shown(qtbot, desktop, sid)
    assert not REPR.search(text), text
    assert "2:05 long · 2 segments" in text
    assert "Channels: me (microphone) 2:05, others (computer sound) 2:04" in text
    assert "Warning: no language model is set up for minutes" in text


def test_an_indexed_file(qtbot, desktop, tmp_path):
    doc = tmp_path / "plan.md"
    doc.write_text("---\ntags: [home, garden]\nowner: ana\n---\n# Plan\n\nDig the beds in March.\n")
    desktop.core.indexer().index([str(doc)])
    sid = desktop.core.store.resolve(str(doc))[0]
    text = shown(qtbot, desktop, sid)
    assert not REPR.search(text), text
    assert f"File: {doc} (on this computer)" in text
    assert "Tags: home, garden" in text and "Front matter: owner: ana" in text and text.count("garden") == 1
    assert "1 chunk, status indexed" in text
    doc.unlink()
    assert f"File: {doc} (not found on this computer)" in shown(qtbot, desktop, sid)


def test_a_file_indexed_in_part_says_what_was_left_out(qtbot, desktop, tmp_path):
    import gzip

    from deskmind.core.ingest.budget import Budget

    log = tmp_path / "server.log.gz"
    log.write_bytes(gzip.compress(b"the heron waits by the weir for the tide to turn\n" * 40_000))
    ix = desktop.core.indexer()
    ix.budget = Budget(max_text_chars=100_000)
    summary = ix.index([str(log)])
    assert summary.count("indexed") == 1
    text = shown(qtbot, desktop, desktop.core.store.resolve(str(log))[0])
    assert ("Indexed in part: kept the first 0.095 MB of text of 1.9 MB (text budget per file: "
            "0.095 MB; Settings → Indexing)") in text, text
    assert "left out" not in text and not REPR.search(text), text


def test_nothing_to_act_on_before_an_item_is_chosen(qtbot, desktop):
    sid = remember(desktop)
    b = desktop.show_window("browser")
    v = b.item_view
    assert "Choose an item" in v.title.text()
    assert not any(x.isEnabled() for x in (v.open_btn, v.export_btn, v.delete_btn))
    shown(qtbot, desktop, sid)
    assert v.delete_btn.isEnabled() and v.export_btn.isEnabled()


def remember(desktop) -> int:
    from tests.ui.conftest import remember_note

    return remember_note(desktop.core, "A note about the shed key.", title="Shed")
