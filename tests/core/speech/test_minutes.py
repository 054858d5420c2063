"""Minutes by map-reduce over transcript chunks, citing transcript times."""

from __future__ import annotations

from deskmind.core.speech.engine import Segment
from deskmind.core.speech.minutes import chunk_transcript, make_minutes, parse_minutes
from tests.core.speech.minutes_writer import MinutesWriter


def _meeting(n: int) -> list[Segment]:
    segs = []
    for i in range(n):
        t = i * 7.0
        if i % 10 == 3:
            text = f"Person{i} will prepare report {i} by Friday."
        elif i % 10 == 6:
            text = f"We decided to adopt plan {i}."
        elif i % 10 == 8:
            text = f"Who owns the budget for item {i}?"
        else:
            text = f"Some discussion about topic {i} that goes on for a while with details."
        segs.append(Segment(t, t + 6.5, text, "me" if i % 2 else "others"))
    return segs


def test_long_meeting_is_chunked_and_merged_without_losing_items():
    segs = _meeting(200)
    writer = MinutesWriter()
    m = make_minutes(segs, writer, privacy="private", max_chars=1500)
    chunks = chunk_transcript(segs, 1500)
    assert len(chunks) > 8 and all(len(c) <= 1500 for c in chunks)
    maps = [p for t, p, _ in writer.prompts if "Transcript:" in p]
    reduces = [p for t, p, _ in writer.prompts if "Partial minutes:" in p]
    assert len(maps) == len(chunks) == m.chunks
    assert reduces and m.model_calls == len(maps) + len(reduces)
    assert all(t == "meeting-minutes" and priv == "private" for t, _, priv in writer.prompts)
    # Every transcript line went to the model exactly once.
    sent = "\n".join(p.split("Transcript:\n", 1)[1] for p in maps)
    assert all(f"topic {i} " in sent for i in range(200) if i % 10 not in (3, 6, 8))
    assert len(m.action_items) == 20 and len(m.decisions) == 20 and len(m.open_questions) == 20
    first = m.action_items[0]
    assert first.owner == "Person3" and first.due == "Friday" and first.at == [21.0]
    assert m.decisions[-1].at == [196 * 7.0]
    # Partials too big to merge in one context are merged by code: every summary is kept.
    assert sum(int(n) for n in __import__("re").findall(r"Discussed (\d+)", m.summary)) == 200
    md = m.to_markdown()
    assert "## Action items" in md and "(owner: Person3; due: Friday) [0:21]" in md


def test_a_single_turn_longer_than_a_chunk_is_split_not_cut():
    long_text = " ".join(f"word{i}" for i in range(600))
    chunks = chunk_transcript([Segment(65.0, 200.0, long_text, "me")], 800)
    assert len(chunks) > 4 and all(len(c) <= 800 for c in chunks)
    assert all(c.startswith("[1:05] me:") for c in chunks)
    joined = " ".join(c.split(":", 2)[2] for c in chunks)
    assert all(f"word{i}" in joined.split() for i in range(600))


def test_unreadable_model_answers_are_kept_as_text():
    segs = _meeting(5)
    m = make_minutes(segs, lambda t, p, v: "Sorry, I cannot do JSON today.", privacy="private")
    assert m.chunks == 1 and m.summary == "Sorry, I cannot do JSON today."
    assert parse_minutes('{"summary": "x", "action_items": [{"text": "a", "owner": "null", "at": "1:02:03"}]}'
                         ).action_items[0].at == [3723.0]


def test_recovery_of_a_folder_with_an_unlisted_segment_and_a_failing_model(core, whisper_engine, speech_dir):
    """A recorder killed between creating a segment file and listing it; then the model
    behind minutes fails. The meeting is still saved, with both files and a clear warning."""
    import shutil

    from deskmind.core.speech import Speech
    from deskmind.core.speech.segments import MeetingFolder, SegmentInfo
    from tests.core.speech.conftest import words
    from tests.fakes.audio import speech_wav

    def broken(task, prompt, privacy):
        raise RuntimeError("model crashed")

    speech = Speech(core, engine=whisper_engine, complete=broken)
    folder = MeetingFolder.create(speech.meetings_dir, "m-1", title="Standup", pid=999999999)
    shutil.copy(speech_wav(speech_dir, "The budget review starts on Monday morning."), folder.path / "me-0001.wav")
    folder.put_segment(SegmentInfo("me", 1, "me-0001.wav", 0.0, 16000))
    shutil.copy(speech_wav(speech_dir, "Please send the travel forms to the office."), folder.path / "others-0001.wav")
    found = speech.interrupted_meetings()
    assert [f.id for f in found] == ["m-1"]
    result = speech.recover(found[0])
    assert {"budget", "monday"} <= words(" ".join(s.text for s in result.segments if s.channel == "me"))
    assert {"travel", "office"} <= words(" ".join(s.text for s in result.segments if s.channel == "others"))
    assert len(result.audio_files) == 2 and result.minutes_id is None
    assert any("minutes could not be written (RuntimeError: model crashed)" in w for w in result.warnings)
    assert core.store.get_source(result.source_id).kind == "meeting"
