"""Meeting minutes from a transcript, through a text-completion callable (the router).

Small local models have small context windows, so the transcript is cut into chunks that fit,
each chunk is summarised into partial minutes (map), and partials are merged in groups that fit
until one remains (reduce). Nothing is dropped: a turn longer than a chunk is split, and when the
model's answer cannot be read, the partials are merged by code instead.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

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
    calls = 0
    partials: list[Minutes] = []
    for n, text in enumerate(chunks, 1):
        answer = complete(TASK, MAP_PROMPT.format(part=n, parts=len(chunks), schema=SCHEMA, text=text), privacy)
        calls += 1
        parsed = parse_minutes(answer)
        if parsed is None:
            log.warning("minutes: part %d/%d answer was not JSON; kept as text", n, len(chunks))
            parsed = Minutes(summary=answer.strip(), unstructured=True)
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
            merged.append(parsed if parsed is not None else merge_by_code(g))
        partials = merged
    result = partials[0] if partials else Minutes()
    result.chunks, result.model_calls = len(chunks), calls
    return result
