"""Meeting minutes from a transcript, through a text-completion callable (the router).

Small local models have small context windows, so the transcript is cut into chunks that fit,
each chunk is summarised into partial minutes (map), and partials are merged in groups that fit
until one remains (reduce). Nothing is dropped: a turn longer than a chunk is split, when the
model's answer cannot be read the partials are merged by code instead, and an item a merge left
out is added back from the partials.

Nothing the model invents reaches the minutes. Each request carries a JSON schema (see
:func:`map_schema`): a runtime that enforces it (llama.cpp grammars, Ollama ``format``, OpenAI
``response_format``) can only answer in the minutes' shape, citing times and quoting words that
are in that part of the transcript. Whatever the runtime, every answer is checked again: a cited
time is moved to the start of the line it falls in or dropped when it lies outside, a quote that
was never said is dropped, and an item left with neither is dropped. When nothing usable is left
the minutes say so (:attr:`Minutes.unusable`) instead of listing "none".
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from deskmind.core.memory.search import content_words
from deskmind.core.speech.engine import Segment
from deskmind.core.speech.minutes_check import (  # noqa: F401  (re-exported)
    LINE, LISTS, Tally, TranscriptQuotes, TranscriptTimes, ground,
)
from deskmind.core.speech.storage import clock, parse_clock, transcript_lines

log = logging.getLogger(__name__)

TASK = "meeting-minutes"
# (task, prompt, privacy, schema=...) -> answer. The answer may carry ``structured`` (whether the
# runtime enforced the schema), as core.app.Completion does.
Complete = Callable[..., str]
UNUSABLE = "The model could not write minutes for this meeting"
MAX_ITEMS = 3      # per list and part: bounds a small model's answer (and its time)
TEXT_CHARS = 100
QUOTE_CHARS = 120
SUMMARY_CHARS = 240

SCHEMA = ('{"decisions": [{"text": "...", "quote": "...", "at": ["m:ss"]}], '
          '"action_items": [{"text": "...", "quote": "...", "owner": "name or null", '
          '"due": "date or null", "at": ["m:ss"]}], '
          '"open_questions": [{"text": "...", "quote": "...", "at": ["m:ss"]}], "summary": "..."}')

MAP_PROMPT = (
    "You write meeting minutes. Below is part {part} of {parts} of a meeting transcript; each "
    "line starts with its time [m:ss] and who spoke (me = the person recording, others = the "
    "other participants). Answer with JSON only, in this shape:\n{schema}\n"
    "Cite in \"at\" the start times of the lines each item comes from, and in \"quote\" the "
    "words said there. Give an action item's owner and due date only when they were said. Use "
    "empty lists when there is nothing.\n\n"
    "Transcript:\n{text}\n")

REDUCE_PROMPT = (
    "Merge these partial minutes of one meeting (in order) into one set of minutes. Keep every "
    "decision, action item and open question (merge only exact repeats), keep their \"at\" times, "
    "and write one summary of the whole meeting. Answer with JSON only, in this shape:\n{schema}\n\n"
    "Partial minutes:\n{text}\n")


@dataclass
class Item:
    text: str
    at: list[float] = field(default_factory=list)
    owner: str | None = None
    due: str | None = None
    quote: str | None = None  # words said in the meeting, checked against the transcript


@dataclass
class Minutes:
    summary: str = ""
    decisions: list[Item] = field(default_factory=list)
    action_items: list[Item] = field(default_factory=list)
    open_questions: list[Item] = field(default_factory=list)
    chunks: int = 0
    model_calls: int = 0
    unusable: str = ""          # why the model could not write minutes; "" when it could
    parts_unusable: int = 0     # parts of the transcript whose answer could not be read
    structured: bool = False    # every answer came from a runtime that enforced the schema
    restored_items: int = 0     # items a model merge left out, added back from the partials
    citations_moved: int = 0    # cited times that were not a line's start, moved to one
    citations_dropped: int = 0  # cited times outside the transcript, removed
    quotes_dropped: int = 0     # quotes of words never said, removed
    items_dropped: int = 0      # items with neither a real time nor a real quote, removed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sections(self) -> list[tuple[str, str, float | None]]:
        """(section name, markdown text, first cited time) for storing as chunks."""
        if self.unusable:
            return [("unusable", f"## Minutes\n{UNUSABLE}: {self.unusable}. The transcript is saved.", None)]
        summary = self.summary.strip()
        if self.parts_unusable:
            summary += (f"\n\n(The model could not write minutes for {self.parts_unusable} of "
                        f"{self.chunks} parts of this meeting: see the transcript.)")
        out: list[tuple[str, str, float | None]] = [("summary", "## Summary\n" + summary.strip(), None)]
        for name, title, items in (("decisions", "Decisions", self.decisions),
                                   ("action_items", "Action items", self.action_items),
                                   ("open_questions", "Open questions", self.open_questions)):
            lines = [f"## {title}"] + ([_render(i) for i in items] or ["- none"])
            times = [t for i in items for t in i.at]
            out.append((name, "\n".join(lines), min(times) if times else None))
        return out

    def to_markdown(self) -> str:
        return "\n\n".join(text for _, text, _ in self.sections())


def _render(item: Item) -> str:
    extra = []
    if item.owner:
        extra.append(f"owner: {item.owner}")
    if item.due:
        extra.append(f"due: {item.due}")
    cite = ", ".join(f"[{clock(t)}]" for t in item.at) or "(no time cited)"
    quote = f" — “{item.quote}”" if item.quote and item.quote.strip() != item.text.strip() else ""
    return f"- {item.text}" + (f" ({'; '.join(extra)})" if extra else "") + quote + f" {cite}"


def chunk_transcript(segments: list[Segment], max_chars: int) -> list[str]:
    """Transcript lines grouped into chunks of at most ``max_chars``. A turn longer than a
    chunk is split between words, each piece keeping its time and speaker."""
    return ["\n".join(line for _, _, line in chunk) for chunk in chunk_pieces(segments, max_chars)]


def chunk_pieces(segments: list[Segment], max_chars: int) -> list[list[tuple[Segment, str, str]]]:
    """Like :func:`chunk_transcript`, as (segment, words of the piece, transcript line) rows."""
    chunks: list[list[tuple[Segment, str, str]]] = []
    cur: list[tuple[Segment, str, str]] = []
    size = 0
    for seg, line in zip(segments, transcript_lines(segments)):
        head = line[: len(line) - len(seg.text)].rstrip()
        pieces = [seg.text]
        if len(line) > max_chars:
            room = max_chars - len(head) - 1
            pieces, words = [], []
            for w in seg.text.split():
                while len(w) > room:  # a "word" longer than a chunk (no spaces at all)
                    if words:
                        pieces.append(" ".join(words))
                        words = []
                    pieces.append(w[:room])
                    w = w[room:]
                if words and len(" ".join(words + [w])) > room:
                    pieces.append(" ".join(words))
                    words = []
                words.append(w)
            if words:
                pieces.append(" ".join(words))
        for words_said in pieces:
            piece = line if words_said is seg.text else f"{head} {words_said}"
            if cur and size + len(piece) + 1 > max_chars:
                chunks.append(cur)
                cur, size = [], 0
            cur.append((seg, words_said, piece))
            size += len(piece) + 1
    if cur:
        chunks.append(cur)
    return chunks


def _item_schema(times: list[str], quote: dict[str, Any], action: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "text": {"type": "string", "minLength": 1, "maxLength": TEXT_CHARS},
        "quote": quote,
        "at": {"type": "array", "items": {"enum": times}, "minItems": 1, "maxItems": 2},
    }
    if action:
        props["owner"] = {"type": ["string", "null"], "maxLength": 40}
        props["due"] = {"type": ["string", "null"], "maxLength": 40}
    return {"type": "object", "properties": props, "required": list(props),
            "additionalProperties": False}


def minutes_schema(times: list[str], quotes: list[str] | None, max_items: int) -> dict[str, Any]:
    """The JSON schema of an answer. Every cited time is one of ``times``; with ``quotes``,
    every quote is one of them, so a runtime that enforces the schema cannot cite a time or
    quote words that are not in the transcript. Lengths and counts are bounded so an answer
    always fits its token budget (a cut-off answer would be unreadable)."""
    quote = ({"enum": quotes} if quotes else {"type": "string", "maxLength": QUOTE_CHARS})
    lists = {name: {"type": "array", "items": _item_schema(times, quote, name == "action_items"),
                    "maxItems": max_items}
             for name in ("decisions", "action_items", "open_questions")}
    return {"type": "object",
            "properties": {**lists, "summary": {"type": "string", "maxLength": SUMMARY_CHARS}},
            "required": [*lists, "summary"], "additionalProperties": False}


def map_schema(chunk: list[tuple[Segment, str, str]]) -> dict[str, Any]:
    """The schema for one part: its lines' times and (up to a quote's length) their words."""
    times = list(dict.fromkeys(clock(seg.start) for seg, _, _ in chunk))
    quotes = list(dict.fromkeys(q for _, said, _ in chunk if (q := _quotable(said))))
    return minutes_schema(times, quotes, MAX_ITEMS)


def _quotable(said: str) -> str:
    said = " ".join(said.split())
    if len(said) <= QUOTE_CHARS:
        return said
    return said[:QUOTE_CHARS].rsplit(" ", 1)[0]


def _items(raw: Any, with_owner: bool = False) -> list[Item]:
    out = []
    for r in raw if isinstance(raw, list) else []:
        if isinstance(r, str):
            r = {"text": r}
        # An item with no words ("...", "-") says nothing; an exact repeat says it again.
        if not isinstance(r, dict) or not re.search(r"\w", str(r.get("text", ""))):
            continue
        if any(o.text == str(r["text"]).strip() and o.quote == r.get("quote") for o in out):
            continue
        at_raw = r.get("at") or []
        at_raw = at_raw if isinstance(at_raw, list) else [at_raw]
        at = []
        for a in at_raw:
            t = float(a) if isinstance(a, (int, float)) else parse_clock(str(a))
            if t is not None:
                at.append(t)
        owner = r.get("owner") if with_owner else None
        due = r.get("due") if with_owner else None
        quote = r.get("quote")
        out.append(Item(str(r["text"]).strip(), sorted(set(at)), _said(owner), _said(due),
                        str(quote).strip() if isinstance(quote, str) and quote.strip() else None))
    return out


def _said(value: Any) -> str | None:
    """An owner or due date as given, or None for the prompt's own placeholders."""
    text = str(value).strip() if value else ""
    return None if text.lower() in ("", "null", "none", "name or null", "date or null") else text


def parse_minutes(answer: str) -> Minutes | None:
    """Minutes from a model's JSON answer (fenced or with prose around it), or None."""
    m = re.search(r"\{.*\}", answer, re.S)
    if not m:
        return None
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    return Minutes(summary=str(data.get("summary") or "").strip(),
                   decisions=_items(data.get("decisions")),
                   action_items=_items(data.get("action_items"), with_owner=True),
                   open_questions=_items(data.get("open_questions")))


def _as_json(m: Minutes) -> str:
    def items(xs: list[Item], owner: bool = False) -> list[dict[str, Any]]:
        out = []
        for i in xs:
            d: dict[str, Any] = {"text": i.text, "quote": i.quote, "at": [clock(t) for t in i.at]}
            if owner:
                d.update(owner=i.owner, due=i.due)
            out.append(d)
        return out

    return json.dumps({"decisions": items(m.decisions),
                       "action_items": items(m.action_items, True),
                       "open_questions": items(m.open_questions), "summary": m.summary},
                      ensure_ascii=False)


def _still_there(item: Item, merged: list[Item]) -> bool:
    """Whether a partial's item survives in a merge. Rewording is allowed: most of its words
    (half, when the merged item cites the same line); a different number ("plan 6" and
    "plan 16") is a different item."""
    want = content_words(item.text)
    numbers = {w for w in want if any(c.isdigit() for c in w)}
    for m in merged:
        have = content_words(m.text)
        if want == have:
            return True
        if not want or numbers - set(have):
            continue
        need = 0.5 if set(item.at) & set(m.at) else 0.75
        if len(set(want) & set(have)) / len(set(want)) >= need:
            return True
    return False


def restore_dropped(merged: Minutes, parts: list[Minutes]) -> list[Item]:
    """Add back, in time order, every item of ``parts`` that ``merged`` left out; returns them."""
    restored: list[Item] = []
    for name in ("decisions", "action_items", "open_questions"):
        items: list[Item] = getattr(merged, name)
        for part in parts:
            for item in getattr(part, name):
                if _still_there(item, items):
                    continue
                _insert_by_time(items, Item(item.text, list(item.at), item.owner, item.due))
                restored.append(item)
    return restored


def _insert_by_time(items: list[Item], item: Item) -> None:
    if item.at:
        for i, other in enumerate(items):
            if other.at and min(other.at) > min(item.at):
                items.insert(i, item)
                return
    items.append(item)


def merge_by_code(parts: list[Minutes]) -> Minutes:
    out = Minutes(summary="\n\n".join(p.summary for p in parts if p.summary))
    for p in parts:
        for name in ("decisions", "action_items", "open_questions"):
            have = {i.text for i in getattr(out, name)}
            getattr(out, name).extend(i for i in getattr(p, name) if i.text not in have)
    return out


def _count(m: Minutes) -> int:
    return sum(len(getattr(m, name)) for name in LISTS)


def make_minutes(segments: list[Segment], complete: Complete, *, privacy: str,
                 max_chars: int = 6000) -> Minutes:
    """Map-reduce minutes. Calls ``complete(TASK, prompt, privacy, schema=...)``; blocking."""
    chunks = chunk_pieces(segments, max_chars)
    times = TranscriptTimes(segments)
    quotes = TranscriptQuotes(segments)
    all_times = list(dict.fromkeys(clock(s.start) for s in segments))
    tally = Tally()
    calls = restored = unreadable = 0
    structured = True
    partials: list[Minutes] = []

    def ask(prompt: str, schema: dict[str, Any]) -> Minutes | None:
        nonlocal calls, structured
        answer = complete(TASK, prompt, privacy, schema=schema)
        calls += 1
        structured = structured and bool(getattr(answer, "structured", False))
        parsed = parse_minutes(answer)
        if parsed is not None:
            ground(parsed, times, quotes, tally)
        return parsed

    for n, chunk in enumerate(chunks, 1):
        text = "\n".join(line for _, _, line in chunk)
        parsed = ask(MAP_PROMPT.format(part=n, parts=len(chunks), schema=SCHEMA, text=text),
                     map_schema(chunk))
        if parsed is None:
            unreadable += 1
            log.warning("minutes: the model's answer for part %d/%d could not be read as minutes",
                        n, len(chunks))
            continue
        partials.append(parsed)
    while len(partials) > 1:
        groups: list[list[Minutes]] = []
        size = 0
        for p in partials:
            n = len(_as_json(p))
            if groups and size + n <= max_chars and len(groups[-1]) < 8:
                groups[-1].append(p)
                size += n
            else:
                groups.append([p])
                size = n
        if len(groups) == len(partials):
            # Each partial alone fills a context: merging by model cannot shrink it further.
            partials = [merge_by_code(partials)]
            break
        merged = []
        for g in groups:
            if len(g) == 1:
                merged.append(g[0])
                continue
            text = "\n".join(_as_json(p) for p in g)
            parsed = ask(REDUCE_PROMPT.format(schema=SCHEMA, text=text),
                         minutes_schema(all_times, None, max(MAX_ITEMS, max(_count(p) for p in g) * len(g))))
            if parsed is None:
                merged.append(merge_by_code(g))
                continue
            # A small model's merge can leave items out however it is asked: check, add back.
            back = restore_dropped(parsed, g)
            if back:
                restored += len(back)
                log.warning("minutes: the model's merge left out %d item(s) of the partial minutes; "
                            "added back: %s", len(back), "; ".join(i.text[:60] for i in back))
            merged.append(parsed)
        partials = merged
    result = partials[0] if partials else Minutes()
    result.chunks, result.model_calls = len(chunks), calls
    result.parts_unusable, result.structured = unreadable, structured and calls > 0
    result.restored_items, result.citations_moved, result.citations_dropped = restored, tally.moved, tally.dropped
    result.quotes_dropped, result.items_dropped = tally.quotes, tally.items
    if not partials:
        result.unusable = "its answer could not be read as minutes"
    elif not _count(result) and tally.items:
        result.unusable = "everything it wrote cited words or times that are not in the transcript"
    elif not _count(result) and not result.summary.strip():
        result.unusable = "its answer was empty"
    if result.unusable:
        result.summary = ""
        log.warning("minutes: %s: %s", UNUSABLE, result.unusable)
    if tally.moved or tally.dropped or tally.quotes or tally.items:
        log.info("minutes: %d cited time(s) moved to a line start, %d outside the transcript "
                 "dropped, %d quote(s) never said dropped, %d item(s) dropped",
                 tally.moved, tally.dropped, tally.quotes, tally.items)
    return result
