"""How much of memory to put in front of the model that will answer.

A 135M-parameter model given six long passages with file locators mostly answers wrong; given
the two or three passages that matter, cut to their best sentences, it mostly answers right.
So the prompt is sized to the model: its parameter count (from what the runtime reports or the
model's name) and its context window (what the runtime reports, e.g. llama.cpp's ``n_ctx``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from deskmind.core.ask.evidence import Graded

# Below a billion parameters a model is "small": few, trimmed passages, a short answer.
SMALL_PARAMS = 1e9
SMALL_PASSAGES = 3
SMALL_PASSAGE_CHARS = 500
# A small model reads a passage only when it is nearly as relevant as the best: a distractor
# next to the right note is what most often turns its answer wrong.
SMALL_MARGIN = 0.1
LARGE_PASSAGE_CHARS = 1500
MIN_PASSAGE_CHARS = 120      # a passage cut to fit a window keeps about a sentence
CHARS_PER_TOKEN = 3.5        # English prose in the tokenizers of current small models
PROMPT_OVERHEAD_TOKENS = 200  # system prompt, question, template

_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([mb])(?![a-z])", re.I)


def parameters_from(text: str) -> float | None:
    """A parameter count from a model's name or size label: "smollm2-135m" → 1.35e8,
    "llama3.2:3b" → 3e9, "Qwen2.5-0.5B-Instruct" → 5e8. None when it does not say."""
    found = _SIZE.findall(text or "")
    if not found:
        return None
    num, unit = found[-1]
    return float(num) * (1e6 if unit.lower() == "m" else 1e9)


@dataclass
class ModelProfile:
    """What the answering model can take, as far as its runtime tells."""

    name: str
    context: int | None = None       # tokens
    parameters: float | None = None

    @property
    def small(self) -> bool:
        return self.parameters is not None and self.parameters < SMALL_PARAMS

    def passages(self, limit: int) -> int:
        return min(limit, SMALL_PASSAGES) if self.small else limit

    def passage_chars(self) -> int:
        return SMALL_PASSAGE_CHARS if self.small else LARGE_PASSAGE_CHARS

    def source_budget(self, answer_tokens: int) -> int | None:
        """Characters of sources that fit beside the answer in the context window."""
        if not self.context:
            return None
        room = self.context - answer_tokens - PROMPT_OVERHEAD_TOKENS
        return max(0, int(room * CHARS_PER_TOKEN))


def profile_for(model: str, provider_state: Any = None, runtime: Any = None) -> ModelProfile:
    """The profile of ``model`` from the inventory's state for its provider and the runtime
    object (the embedded runtime knows its ``n_ctx`` and the GGUF's size label)."""
    ctx = None
    if provider_state is not None:
        ctx = (getattr(provider_state, "context", None) or {}).get(model)
    if not ctx and runtime is not None:
        ctx = getattr(runtime, "n_ctx", None)
    params = None
    for label in (getattr(runtime, "size_label", None), getattr(runtime, "model_name", None), model):
        if isinstance(label, str) and (params := parameters_from(label)) is not None:
            break
    return ModelProfile(model, int(ctx) if ctx else None, params)


def choose_passages(graded: Sequence[Graded], profile: ModelProfile, limit: int,
                    answer_tokens: int, taken_chars: int = 0) -> list[tuple[Graded, str]]:
    """The relevant passages the model will read, best first, each with the text to show it:
    the whole passage when it fits, else its best sentences and their neighbours. ``taken_chars``
    of the window go to other text of the prompt (earlier turns of the conversation)."""
    ranked = sorted((g for g in graded if g.relevant), key=lambda g: -g.relevance)
    if profile.small and ranked:
        ranked = [g for g in ranked if g.relevance >= ranked[0].relevance - SMALL_MARGIN]
    ranked = ranked[:profile.passages(limit)]
    budget = profile.source_budget(answer_tokens)
    if budget is not None:
        budget = max(0, budget - taken_chars)
    per = profile.passage_chars()
    if budget is not None and ranked:
        per = max(MIN_PASSAGE_CHARS, min(per, budget // len(ranked)))
    return [(g, trim_passage(g, per)) for g in ranked]


def trim_passage(g: Graded, chars: int) -> str:
    """The passage if it fits in ``chars``; else its sentences in order of relevance, kept in
    their original order, until the budget is spent."""
    whole = " ".join(g.hit.text.split())
    if len(whole) <= chars:
        return whole
    keep: set[int] = set()
    used = 0
    for k in sorted(range(len(g.sentences)), key=lambda k: -g.scores[k]):
        n = len(g.sentences[k]) + 1
        if keep and used + n > chars:
            break
        keep.add(k)
        used += n
    parts, last = [], -1
    for k in sorted(keep):
        if last >= 0 and k != last + 1:
            parts.append("…")
        parts.append(g.sentences[k][:chars])
        last = k
    return " ".join(parts)
