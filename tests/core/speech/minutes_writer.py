"""A rule-based stand-in for the language model behind ``complete(task, prompt, privacy)``.

It reads the prompts Deskmind sends the way a model would have to (transcript lines with their
times in map prompts, partial-minutes JSON in reduce prompts) and answers JSON in the requested
shape, so the map-reduce, the citations and the storage of minutes are tested for real.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

LINE = re.compile(r"^\[(\d+:\d{2}(?::\d{2})?)\] (?:(me|others): )?(.*)$")


class MinutesWriter:
    """``reduce_edit`` changes each merged answer before it is sent (a model that drops an
    item or cites a wrong time)."""

    def __init__(self, reduce_edit: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.prompts: list[tuple[str, str, str]] = []
        self.schemas: list[dict[str, Any] | None] = []
        self.reduce_edit = reduce_edit

    def __call__(self, task: str, prompt: str, privacy: str, schema: dict[str, Any] | None = None) -> str:
        self.prompts.append((task, prompt, privacy))
        self.schemas.append(schema)
        if "Partial minutes:" in prompt:
            return self._reduce(prompt.split("Partial minutes:\n", 1)[1])
        return self._map(prompt.split("Transcript:\n", 1)[1])

    def _map(self, text: str) -> str:
        out = {"summary": "", "decisions": [], "action_items": [], "open_questions": []}
        topics = []
        for line in text.strip().splitlines():
            m = LINE.match(line)
            if not m:
                continue
            at, said = m.group(1), m.group(3)
            low = said.lower()
            topics.append(said.split()[0] if said else "")
            if "we decided" in low or "decision" in low:
                out["decisions"].append({"text": said, "at": [at]})
            if " will " in f" {low} ":
                owner = said.split()[0]
                due = re.search(r"\bby (\w+)", said)
                out["action_items"].append({"text": said, "owner": owner,
                                            "due": due.group(1) if due else None, "at": [at]})
            if said.rstrip().endswith("?"):
                out["open_questions"].append({"text": said, "at": [at]})
        out["summary"] = f"Discussed {len(topics)} points."
        return "Here are the minutes:\n```json\n" + json.dumps(out) + "\n```"

    def _reduce(self, text: str) -> str:
        merged = {"summary": "", "decisions": [], "action_items": [], "open_questions": []}
        n = 0
        for line in text.strip().splitlines():
            part = json.loads(line)
            for key in ("decisions", "action_items", "open_questions"):
                merged[key].extend(part[key])
            n += int(re.search(r"\d+", part["summary"]).group(0)) if re.search(r"\d+", part["summary"]) else 0
        merged["summary"] = f"Discussed {n} points."
        if self.reduce_edit is not None:
            self.reduce_edit(merged)
        return json.dumps(merged)
