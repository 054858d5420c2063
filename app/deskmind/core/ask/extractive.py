"""Extractive answers for small models: the answer is a sentence of the person's notes.

A model under a billion parameters asked to answer in its own words from a grounded prompt
mostly paraphrases wrong: on the design half of the evaluation set (bench/eval) SmolLM2-135M
got 9 of 22 answers right, inventing dates and amounts next to the note that held the right
ones. So for a small model the answer is a sentence of the retrieved passages, quoted with its
citation, and nothing else.

Which sentence: the embedder ranks every sentence of the passages the model would read by its
similarity to the question. When one sentence stands out, it is the answer and no model is
asked. When several are about as close (within :data:`CLOSE_MARGIN`), the model copies the one
that answers, under a llama.cpp grammar whose only strings are those sentences, each followed
by its citation: it cannot write a word that is not in the notes.

Measured with SmolLM2-135M on the design half of the evaluation set (22 questions, docs/ask.md):
the embedder's best sentence held the fact for 20; the model copying one of the top two or four
(given in note order) for 17, its misses being sentences far below the best (0.06 against
0.71); choosing by number, 6 in note order, and given best first it took the first every time.
So the model chooses only among sentences the embedder cannot tell apart. A "the notes do not
say" alternative in the grammar turned 8 right answers into refusals for 2 right refusals, so it
is not offered: the relevance threshold (core.ask.evidence) decides when memory holds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from deskmind.core.runtimes.base import Message

# Sentences this close to the best one's similarity are all candidates for the model to choose.
CLOSE_MARGIN = 0.1
MAX_CANDIDATES = 3

SYSTEM_EXTRACT = "Copy the one sentence from the notes that answers the question."


@dataclass(frozen=True)
class Candidate:
    """A sentence of passage ``n`` (the citation number) and its similarity to the question."""

    n: int
    text: str
    score: float

    @property
    def answer(self) -> str:
        return f"{self.text} [{self.n}]"


def candidates(chosen: Sequence[tuple[Any, str]], *, margin: float | None = None,
               limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """The sentences that may answer, best first: the best sentence of the passages (``(Graded,
    text shown)``, numbered from 1 in that order) and those within ``margin`` (default
    :data:`CLOSE_MARGIN`) of it."""
    margin = CLOSE_MARGIN if margin is None else margin
    ranked: list[Candidate] = []
    seen: set[str] = set()
    for n, (g, _shown) in enumerate(chosen, 1):
        for text, score in zip(g.sentences, g.scores):
            if text not in seen:
                seen.add(text)
                ranked.append(Candidate(n, text, float(score)))
    ranked.sort(key=lambda c: -c.score)
    if not ranked:
        return []
    return [c for c in ranked if c.score >= ranked[0].score - margin][:limit]


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def grammar_for(cands: Sequence[Candidate]) -> str:
    """A GBNF grammar whose only sentences are the candidates' answers (text and citation)."""
    if not cands:
        raise ValueError("a grammar needs at least one sentence")
    return "root ::= " + " | ".join(gbnf_literal(c.answer) for c in cands)


def extract_messages(question: str, cands: Sequence[Candidate]) -> list[Message]:
    """The prompt for the model that chooses: the candidates in the order of the notes (given
    best first, a small model copies the first whatever it says), then the question."""
    ordered = sorted(cands, key=lambda c: c.n)
    notes = "\n".join(f"- {c.text}" for c in ordered)
    return [Message("system", SYSTEM_EXTRACT),
            Message("user", f"Notes:\n{notes}\n\nQuestion: {question}")]


def answer_tokens(cands: Sequence[Candidate]) -> int:
    """A cap that lets the longest candidate be copied whole (English text runs at more than
    two characters a token)."""
    return max(len(c.answer) for c in cands) // 2 + 16


def chosen_candidate(answer: str, cands: Sequence[Candidate]) -> Candidate | None:
    """The candidate a copied answer is (None when it is not exactly one: cut short)."""
    text = answer.strip()
    return next((c for c in cands if c.answer == text), None)
