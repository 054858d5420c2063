"""What the quick-ask pipeline takes and gives: options, streamed events, the result, and the
prompt prepared for one candidate model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from deskmind.core.ask.evidence import Graded
from deskmind.core.ask.prompt import Citation
from deskmind.core.runtimes.base import Message

# Every answer has a cap: a small model may otherwise generate for minutes. The route budgets
# the same room in the context window.
ANSWER_TOKENS = 1024
SMALL_ANSWER_TOKENS = 200  # a small model's answer from notes: one or two sentences

@dataclass
class AskOptions:
    use_memory: bool = True
    model: str | None = None  # explicit override: provider:model or a model name
    # An outside client's model choice: kept only where the matched rule's zones allow it.
    model_within_rule: bool = False
    prompt_privacy: str | None = None  # default: the rules file's prompt_privacy
    task: str = "ask"
    agent: str = "quick-ask"
    limit: int = 6
    tools: bool = False
    save: bool = True
    max_tokens: int | None = None
    temperature: float | None = None
    # A JSON schema the answer must follow (see ChatRequest.response_schema); the route then
    # tells whether the chosen runtime enforced it ("structured").
    response_schema: dict[str, Any] | None = None
    # Models ("provider:model") not to use for this request, e.g. ones that keep failing a task.
    avoid_models: frozenset[str] = frozenset()
    # A GBNF grammar the answer must follow (runtimes whose ``grammar_output`` is True).
    grammar: str | None = None
    # Earlier turns of this conversation, ``(question, answer)`` oldest first: the model reads
    # them before the question, but memory is searched and passages graded for the question
    # alone (a follow-up about something else must not find the earlier answer's notes).
    earlier: tuple[tuple[str, str], ...] = ()


@dataclass
class AskEvent:
    kind: str  # retrieved | route | token | tool | fallback | stopped | done
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    result: "AskResult | None" = None


@dataclass
class AskResult:
    question: str
    answer: str
    citations: list[Citation]
    route: dict[str, Any]
    timings: dict[str, float]
    privacy: str
    withheld: list[int] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    saved_source_id: int | None = None
    # False when no passage of memory backs the answer (memory not searched, or not used).
    grounded: bool = False
    # True when memory held nothing relevant enough and no model was asked.
    abstained: bool = False
    # Sentences of the answer that no passage backs: the model's own words.
    unsupported: list[str] = field(default_factory=list)
    stopped: str | None = None  # "repetition" when the stream was cut short

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer,
                "citations": [c.to_dict() for c in self.citations], "route": self.route,
                "timings": {k: round(v, 2) for k, v in self.timings.items()},
                "privacy": self.privacy, "withheld_items": self.withheld,
                "tool_calls": self.tool_calls, "saved_source_id": self.saved_source_id,
                "grounded": self.grounded, "abstained": self.abstained,
                "unsupported": self.unsupported, "stopped": self.stopped}


@dataclass
class Prepared:
    chosen: list[tuple[Graded, str]]   # passages and the text of each the model reads
    messages: list[Message]
    citations: list[Citation]
    opts: AskOptions                   # as the model runs them (e.g. temperature 0 when small)
    profile: Any                       # core.ask.grounding.ModelProfile
    # A small model's answer is a sentence of the passages (core.ask.extractive): the
    # sentences it may copy, best first; with ``ask_model`` False the first is the answer.
    extract: list[Any] = field(default_factory=list)
    ask_model: bool = True


NOTHING_RELEVANT = ("Nothing in your memory is relevant enough to answer this, so no model was "
                    "asked: without your notes its answer would be a guess.")
# A first run: nothing was ever indexed, so the person needs the way in, not a refusal.
MEMORY_EMPTY = ("Your memory is empty, so there is nothing to answer this from and no model was "
                "asked. Index a folder of notes first: drop it on the palette, or run "
                "'deskmind index FOLDER'.")


class LazyEmbedder:
    """The memory's embedder, built on first use (a question with no passages needs none)."""

    def __init__(self, embedder_for: Callable[[Any], Any]) -> None:
        self._for = embedder_for
        self._emb: Any = None

    def _get(self) -> Any:
        if self._emb is None:
            self._emb = self._for(None)
        return self._emb

    @property
    def dim(self) -> int:
        return int(self._get().dim)

    def embed(self, texts: Any) -> Any:
        return self._get().embed(texts)

    def embed_query(self, text: str) -> Any:
        return self._get().embed_query(text)
