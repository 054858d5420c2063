"""Minutes by map-reduce over transcript chunks, citing transcript times."""

from __future__ import annotations

import json

import pytest

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


def test_unreadable_model_answers_make_minutes_that_say_so_never_none():
    segs = _meeting(5)
    m = make_minutes(segs, lambda t, p, v, schema=None: "Sorry, I cannot do JSON today.",
                     privacy="private")
    assert m.chunks == 1 and m.unusable == "its answer could not be read as minutes"
    md = m.to_markdown()
    assert md.startswith("## Minutes\nThe model could not write minutes for this meeting: its answer")
    assert "none" not in md and "Sorry" not in md
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

    def broken(task, prompt, privacy, schema=None):
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


# A meeting whose lines start between whole seconds, with a pause from 0:23 to 0:31.
FILLER = ("Some discussion about the parking spaces behind the building, the bicycle racks, the "
          "visitor badges and how the front desk should hand them out in the mornings, and then "
          "about the coffee machine on the third floor and who cleans it on which days.")
MEETING = [
    Segment(2.4, 8.9, FILLER, "others"),
    Segment(9.6, 16.2, "We decided to move the office to Berlin in May.", "me"),
    Segment(16.8, 23.5, "Dana will book the movers by Friday.", "others"),
    Segment(31.3, 38.0, "Who pays for the new desks?", "me"),
    Segment(38.6, 45.1, FILLER, "others"),
    Segment(45.7, 52.4, "Sam will order the desks by Monday.", "me"),
    Segment(53.0, 59.8, "We decided to keep the old chairs.", "others"),
    Segment(60.4, 74.0, FILLER, "me"),
]


def _careless_merge(merged: dict) -> None:
    """What a small model's merge did: Sam's action item gone, the Berlin decision cited in the
    middle of its line, the question cited in the pause and at a time the meeting never reached."""
    merged["action_items"] = [a for a in merged["action_items"] if not a["text"].startswith("Sam")]
    for d in merged["decisions"]:
        if "Berlin" in d["text"]:
            d["at"] = ["0:12"]
    merged["open_questions"][0]["at"] = ["0:27", "59:00"]


def test_a_merge_that_drops_an_item_and_miscites_is_checked_against_the_partials_and_transcript(
        core, monkeypatch, caplog):
    """Minutes written by a local runtime (an Ollama-protocol server on loopback) through
    the router; its merge answer loses an item and cites times that start no line."""
    import logging

    from deskmind.core.speech.transcribe_meeting import minutes_draft
    from tests.fakes.llm_server import FakeLLMServer, Reply, last_user_text

    writer = MinutesWriter(reduce_edit=_careless_merge)
    with FakeLLMServer(script=lambda body: Reply(writer("meeting-minutes", last_user_text(body),
                                                        "private"))) as srv:
        monkeypatch.setenv("DESKMIND_DISCOVER", f"ollama=ollama@127.0.0.1:{srv.port}")
        with caplog.at_level(logging.INFO, logger="deskmind.core.speech.minutes"):
            m = make_minutes(MEETING, core.complete, privacy="private", max_chars=700)
        sent = [last_user_text(r.json()) for r in srv.chat_requests()]
        formats = [r.json().get("format") for r in srv.chat_requests()]
    # Every request carried the minutes' schema in Ollama's own field, so the minutes say so.
    assert all(f and f["required"] == ["decisions", "action_items", "open_questions", "summary"]
               for f in formats) and m.structured
    maps = [p for p in sent if "Transcript:\n" in p]
    assert len(maps) >= 2 and len(sent) == len(maps) + 1 == m.model_calls  # one merge by the model
    assert "Partial minutes:\n" in sent[-1]

    # The dropped item is back, as the partial minutes had it, in time order.
    assert [(a.text, a.owner, a.due, a.at) for a in m.action_items] == [
        ("Dana will book the movers by Friday.", "Dana", "Friday", [16.8]),
        ("Sam will order the desks by Monday.", "Sam", "Monday", [45.7])]
    assert [d.text for d in m.decisions] == ["We decided to move the office to Berlin in May.",
                                             "We decided to keep the old chairs."]
    assert m.restored_items == 1
    assert "left out 1 item(s)" in caplog.text and "Sam will order the desks" in caplog.text
    # Cited times are line starts: 0:12 is within the line that starts at 9.6, 0:27 is in the
    # pause (the next line starts at 31.3), and 59:00 is outside the transcript.
    assert m.decisions[0].at == [9.6] and m.open_questions[0].at == [31.3]
    starts = {s.start for s in MEETING}
    assert all(set(i.at) <= starts and i.at for i in m.decisions + m.action_items + m.open_questions)
    assert (m.citations_moved, m.citations_dropped) == (2, 1)
    assert "Sam will order the desks by Monday. (owner: Sam; due: Monday) [0:45]" in m.to_markdown()
    meta = minutes_draft("m-1", 1, "Office move", m, "private").metadata["minutes"]
    assert (meta["restored_items"], meta["citations_moved"], meta["citations_dropped"]) == (1, 2, 1)


def test_transcript_times_snap_to_line_starts():
    from deskmind.core.speech.minutes import TranscriptTimes

    times = TranscriptTimes(MEETING)
    assert times.snap(9.0) == 9.6          # "[0:09]" is how the line starting at 9.6 is shown
    assert times.snap(20.0) == 16.8        # said during the line that starts at 16.8
    assert times.snap(24.0) == 16.8        # in the pause: the nearest line start...
    assert times.snap(29.0) == 31.3        # ...before or after it
    assert times.snap(1.0) is None and times.snap(76.0) is None
    assert TranscriptTimes([]).snap(3.0) is None


# One decision, one action item and one open question; times are whole seconds.
STANDUP = [
    Segment(0.0, 5.5, "Good morning, let us look at the offsite plans.", "me"),
    Segment(6.0, 11.0, "We decided to hold the offsite in Lisbon.", "others"),
    Segment(12.0, 17.0, "Anna will book the hotel by Friday.", "me"),
    Segment(18.0, 22.0, "Who will pay for the flights?", "others"),
]


def test_invented_quotes_times_and_transcript_lines_are_dropped():
    """A crafted answer, as a small model wrote it: some of it true, some never said."""
    import json

    answer = json.dumps({
        "decisions": [
            # true, with its quote; the time cited is the next line's: the quote's line is added
            {"text": "Offsite in Lisbon", "quote": "we decided to hold the offsite in Lisbon",
             "at": ["0:12"]},
            # invented quote, no usable time: dropped
            {"text": "Budget approved", "quote": "The budget is approved.", "at": ["9:59"]},
        ],
        "action_items": [
            {"text": "Anna books the hotel", "quote": "Anna will book the hotel by Friday.",
             "owner": "Anna", "due": "date or null", "at": ["0:12"]},
            # a transcript line no one said: dropped, whatever time it claims
            {"text": "[0:34] others: When do they deliver the chairs?", "at": ["0:18"]},
        ],
        "open_questions": [
            # real time, invented quote: the quote goes, the item stays at its line
            {"text": "Who pays for flights", "quote": "Someone must pay for the flights",
             "at": ["0:18"]},
        ],
        "summary": "Offsite planning.",
    })
    m = make_minutes(STANDUP, lambda t, p, v, schema=None: answer, privacy="private")
    assert not m.unusable
    assert [(d.text, d.quote, d.at) for d in m.decisions] == [
        ("Offsite in Lisbon", "we decided to hold the offsite in Lisbon", [6.0, 12.0])]
    assert [(a.text, a.owner, a.due, a.at) for a in m.action_items] == [
        ("Anna books the hotel", "Anna", None, [12.0])]  # the prompt's placeholder is not a date
    assert [(q.text, q.quote, q.at) for q in m.open_questions] == [("Who pays for flights", None, [18.0])]
    assert (m.quotes_dropped, m.items_dropped, m.citations_dropped) == (3, 2, 1)
    md = m.to_markdown()
    assert "0:34" not in md and "budget" not in md.lower() and "Someone must" not in md
    assert "- Offsite in Lisbon — “we decided to hold the offsite in Lisbon” [0:06], [0:12]" in md


def test_minutes_where_everything_was_invented_are_unusable():
    answer = ('{"decisions": [{"text": "[0:41] me: We agreed to double the budget.", "at": []}], '
              '"action_items": [{"text": "Call the bank", "quote": "call the bank today", "at": ["3:00"]}], '
              '"open_questions": [], "summary": "The budget was doubled."}')
    m = make_minutes(STANDUP, lambda t, p, v, schema=None: answer, privacy="private")
    assert m.unusable == "everything it wrote cited words or times that are not in the transcript"
    md = m.to_markdown()
    assert "could not write minutes" in md and "budget" not in md and "none" not in md
    assert m.sections() == [("unusable", md, None)]


def test_the_schema_admits_only_the_parts_times_and_words():
    """The schema sent with each part: a truthful answer fits it; an invented time or quote,
    an extra item or an over-long text cannot be decoded under it."""
    import jsonschema

    from deskmind.core.speech.minutes import MAX_ITEMS, TEXT_CHARS, chunk_pieces, map_schema

    writer = MinutesWriter()
    make_minutes(STANDUP, writer, privacy="private")
    (schema,) = writer.schemas
    assert schema == map_schema(chunk_pieces(STANDUP, 6000)[0])
    good = {"decisions": [{"text": "Lisbon", "quote": "We decided to hold the offsite in Lisbon.",
                           "at": ["0:06"]}],
            "action_items": [{"text": "Hotel", "quote": "Anna will book the hotel by Friday.",
                              "at": ["0:12"], "owner": "Anna", "due": "Friday"}],
            "open_questions": [], "summary": "Offsite."}
    jsonschema.validate(good, schema)
    bad_cases = [
        {"at": ["0:34"]},
        {"quote": "We decided to hold the offsite in Paris."},
        {"text": "x" * (TEXT_CHARS + 1)},
    ]
    for change in bad_cases:
        bad = json.loads(json.dumps(good))
        bad["decisions"][0].update(change)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    too_many = dict(good, decisions=good["decisions"] * (MAX_ITEMS + 1))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(too_many, schema)


def test_the_default_model_writes_minutes_in_shape_with_only_real_quotes_and_times(core, monkeypatch):
    """SmolLM2-135M through the router (the embedded llama.cpp runtime, nothing else running),
    on a meeting with one decision, one action item and one open question. Its answer is
    decoded under the schema, so it parses; whatever it picked is in the transcript."""
    from deskmind.core.speech.minutes import TranscriptQuotes

    monkeypatch.setenv("DESKMIND_DISCOVER", "")  # no model server: the embedded model answers
    m = make_minutes(STANDUP, core.complete, privacy="private")
    assert m.structured and m.model_calls == 1 and m.parts_unusable == 0
    assert m.unusable != "its answer could not be read as minutes"
    items = m.decisions + m.action_items + m.open_questions
    starts = {s.start for s in STANDUP}
    quotes = TranscriptQuotes(STANDUP)
    assert all(set(i.at) <= starts for i in items)
    assert all(quotes.find(i.quote)[0] for i in items if i.quote)
    assert all(i.at or i.quote for i in items)
    assert len(m.summary) <= 240
    print("minutes by the default model:\n" + m.to_markdown())
