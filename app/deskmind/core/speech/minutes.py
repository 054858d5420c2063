"""Meeting minutes from a transcript, through a text-completion callable (the router).

Small local models have small context windows, so the transcript is cut into chunks that fit,
each chunk is summarised into partial minutes (map), and partials are merged in groups that fit
until one remains (reduce). Nothing is dropped: a turn longer than a chunk is split, when the
model's answer cannot be read the partials are merged by code instead, and an item a merge left
out is added back from the partials. Every time the model cites is checked against the
transcript: moved to the start of the line it falls in, or dropped when it lies outside.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from deskmind.core.memory.search import content_words
from deskmind.core.speech.engine import Segment
from deskmind.core.speech.storage import clock, parse_clock, transcript_lines

log = logging.getLogger(__name__)

TASK = "meeting-minutes"
Complete = Callable[[str, str, str], str]  # (task, prompt, privacy) -> answer

SCHEMA = ('{"summary": "...", "decisions": [{"text": "...", "at": ["m:ss"]}], '
          '"action_items": [{"text": "...", "owner": "name or null", "due": "date or null", '
          '"at": ["m:ss"]}], "open_questions": [{"text": "...", "at": ["m:ss"]}]}')

MAP_PROMPT = (
    "You write meeting minutes. Below is part {part} of {parts} of a meeting transcript; each "
    "line starts with its time [m:ss] and who spoke (me = the person recording, others = the "
    "other participants). Answer with JSON only, in this shape:\n{schema}\n"
    "Cite in \"at\" the start times of the lines each item comes from. Give an action item's "
    "owner and due date only when they were said. Use empty lists when there is nothing.\n\n"
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


@dataclass
class Minutes:
    summary: str = ""
    decisions: list[Item] = field(default_factory=list)
    action_items: list[Item] = field(default_factory=list)
    open_questions: list[Item] = field(default_factory=list)
    chunks: int = 0
    model_calls: int = 0
    unstructured: bool = False  # the model's answer could not be read as minutes; kept as text
    restored_items: int = 0     # items a model merge left out, added back from the partials
    citations_moved: int = 0    # cited times that were not a line's start, moved to one
    citations_dropped: int = 0  # cited times outside the transcript, removed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sections(self) -> list[tuple[str, str, float | None]]:
        """(section name, markdown text, first cited time) for storing as chunks."""
        out: list[tuple[str, str, float | None]] = [("summary", "## Summary\n" + self.summary.strip(), None)]
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
    return f"- {item.text}" + (f" ({'; '.join(extra)})" if extra else "") + f" {cite}"


def chunk_transcript(segments: list[Segment], max_chars: int) -> list[str]:
    """Transcript lines grouped into chunks of at most ``max_chars``. A turn longer than a
    chunk is split between words, each piece keeping its time and speaker."""
    chunks: list[str] = []
    cur: list[str] = []
    size = 0
    for seg, line in zip(segments, transcript_lines(segments)):
        pieces = [line]
        if len(line) > max_chars:
            head = line[: len(line) - len(seg.text)].rstrip()
            room = max_chars - len(head) - 1
            pieces, words = [], []
            for w in seg.text.split():
                while len(w) > room:  # a "word" longer than a chunk (no spaces at all)
                    if words:
                        pieces.append(f"{head} {' '.join(words)}")
                        words = []
                    pieces.append(f"{head} {w[:room]}")
                    w = w[room:]
                if words and len(" ".join(words + [w])) > room:
                    pieces.append(f"{head} {' '.join(words)}")
                    words = []
                words.append(w)
            if words:
                pieces.append(f"{head} {' '.join(words)}")
        for piece in pieces:
            if cur and size + len(piece) + 1 > max_chars:
                chunks.append("\n".join(cur))
                cur, size = [], 0
            cur.append(piece)
            size += len(piece) + 1
    if cur:
        chunks.append("\n".join(cur))
    return chunks


def _items(raw: Any, with_owner: bool = False) -> list[Item]:
    out = []
    for r in raw if isinstance(raw, list) else []:
        if isinstance(r, str):
            r = {"text": r}
        if not isinstance(r, dict) or not str(r.get("text", "")).strip():
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
        out.append(Item(str(r["text"]).strip(), sorted(set(at)),
                        str(owner).strip() if owner and str(owner).lower() != "null" else None,
                        str(due).strip() if due and str(due).lower() != "null" else None))
    return out


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
            d: dict[str, Any] = {"text": i.text, "at": [clock(t) for t in i.at]}
            if owner:
                d.update(owner=i.owner, due=i.due)
            out.append(d)
        return out

    return json.dumps({"summary": m.summary, "decisions": items(m.decisions),
                       "action_items": items(m.action_items, True),
                       "open_questions": items(m.open_questions)}, ensure_ascii=False)


class TranscriptTimes:
    """The start times of the transcript's lines, to check the times a model cites.

    Lines are shown to the model as ``[m:ss]`` (seconds cut, not rounded), so a cited time
    names the line whose start shows the same; any other time goes to the line being spoken
    then, or in a pause to the nearest line start. Times outside the transcript are dropped.
    """

    def __init__(self, segments: list[Segment]) -> None:
        self._segments = sorted(segments, key=lambda s: s.start)
        self._by_label: dict[int, float] = {}
        for seg in self._segments:
            self._by_label.setdefault(int(seg.start), seg.start)
        self._first = int(self._segments[0].start) if segments else 0
        self._last = max((s.end for s in segments), default=0.0)

    def snap(self, t: float) -> float | None:
        if not self._segments or t < self._first or t > self._last + 1.0:
            return None
        if int(t) in self._by_label:
            return self._by_label[int(t)]
        speaking = [s.start for s in self._segments if s.start <= t <= s.end]
        if speaking:
            return max(speaking)
        return min((s.start for s in self._segments), key=lambda start: abs(start - t))

    def check(self, m: Minutes) -> tuple[int, int]:
        """Snap every cited time of ``m`` in place; (times moved, times dropped)."""
        moved = dropped = 0
        for item in m.decisions + m.action_items + m.open_questions:
            kept = []
            for t in item.at:
                real = self.snap(t)
                if real is None:
                    dropped += 1
                    continue
                if int(real) != int(t):  # within the cited second is the same line
                    moved += 1
                kept.append(real)
            item.at = sorted(set(kept))
        return moved, dropped


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


def make_minutes(segments: list[Segment], complete: Complete, *, privacy: str,
                 max_chars: int = 6000) -> Minutes:
    """Map-reduce minutes. Calls ``complete(TASK, prompt, privacy)``; blocking."""
    chunks = chunk_transcript(segments, max_chars)
    times = TranscriptTimes(segments)
    calls = moved = dropped = restored = 0
    partials: list[Minutes] = []
    for n, text in enumerate(chunks, 1):
        answer = complete(TASK, MAP_PROMPT.format(part=n, parts=len(chunks), schema=SCHEMA, text=text), privacy)
        calls += 1
        parsed = parse_minutes(answer)
        if parsed is None:
            log.warning("minutes: part %d/%d answer was not JSON; kept as text", n, len(chunks))
            parsed = Minutes(summary=answer.strip(), unstructured=True)
        m, d = times.check(parsed)
        moved, dropped = moved + m, dropped + d
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
            answer = complete(TASK, REDUCE_PROMPT.format(schema=SCHEMA, text=text), privacy)
            calls += 1
            parsed = parse_minutes(answer)
            if parsed is None:
                merged.append(merge_by_code(g))
                continue
            m, d = times.check(parsed)
            moved, dropped = moved + m, dropped + d
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
    result.restored_items, result.citations_moved, result.citations_dropped = restored, moved, dropped
    if moved or dropped:
        log.info("minutes: %d cited time(s) moved to a line start, %d outside the transcript dropped",
                 moved, dropped)
    return result
