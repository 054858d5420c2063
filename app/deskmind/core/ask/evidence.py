"""Which sentences of each passage back an answer, and which sentences of an answer nothing backs.

Everything here runs locally with the memory's own sentence embedder (MiniLM): the question and
each sentence of the retrieved passages are embedded, and cosine similarity says how relevant a
passage is (its best sentence) and which sentence or two a person should read to check the
answer. Blocking (the embedder is): call from a worker thread.

The relevance threshold was calibrated on the evaluation set in ``bench/eval`` (docs/ask.md):
there, every answerable question's best sentence scored 0.58 or more; questions about things
the notes never hold scored 0.35 or less, except two about passwords (0.50, 0.51) that meet the
wifi note's "its password is on the sticker", which the model then reads.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from deskmind.core.memory.models import Hit
from deskmind.core.memory.search import content_words

log = logging.getLogger(__name__)

# A passage whose best sentence is less similar to the question than this is not evidence.
RELEVANCE_THRESHOLD = 0.45
# An answer sentence this similar to some passage sentence is backed by it.
SUPPORT_THRESHOLD = 0.55
# ... or when this share of its content words (and every number in it) is in the passages.
SUPPORT_WORD_SHARE = 0.7
# Passages are split only this far: a long chunk's later sentences rarely decide the answer,
# and each sentence costs an embedding (~4 ms on two cores).
MAX_SENTENCES = 10
MAX_PASSAGE_CHARS = 1500
MAX_SENTENCE_CHARS = 400
# A best sentence shorter than this is shown with its neighbour ("Paid 400 euros." needs
# the sentence saying what for).
SHORT_SENTENCE = 60
CACHE_SIZE = 4096

_BREAK = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9À-Ý])|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
# A full stop after these is not a sentence end ("Dr. Okafor", "e.g. the boiler").
_ABBREV = re.compile(r"(?:\b(?:dr|mr|mrs|ms|prof|st|no|vs|etc|approx|e\.g|i\.e)|\b[A-Z])\.$", re.I)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def split_sentences(text: str, limit: int = MAX_SENTENCES) -> list[str]:
    """The sentences (and list items) of a passage, whitespace folded, at most ``limit``."""
    out: list[str] = []
    carry = ""
    for part in _BREAK.split(text[:MAX_PASSAGE_CHARS]):
        s = " ".join((carry + " " + _BULLET.sub("", part)).split()) if carry else \
            " ".join(_BULLET.sub("", part).split())
        carry = ""
        if _ABBREV.search(s) and not part.endswith("\n"):
            carry = s
            continue
        if len(s) > 1:
            out.append(s[:MAX_SENTENCE_CHARS])
        if len(out) >= limit:
            return out
    if len(carry) > 1 and len(out) < limit:
        out.append(carry[:MAX_SENTENCE_CHARS])
    return out


@dataclass
class Graded:
    """A retrieved passage with its relevance to the question and its best sentences."""

    hit: Hit
    relevance: float          # cosine of the question with the passage's best sentence
    sentences: list[str]
    scores: list[float]       # each sentence's cosine with the question
    evidence: str             # the sentence or two a person should read

    @property
    def relevant(self) -> bool:
        return self.relevance >= RELEVANCE_THRESHOLD


@dataclass
class AnswerSentence:
    text: str
    supported: bool
    source: int | None = None     # index into the graded passages of the best match


class EvidenceFinder:
    """Grades passages and checks answers with one embedder; caches sentence vectors, since
    the same passages come back for related questions. Thread-safe."""

    def __init__(self, embedder: Any, cache_size: int = CACHE_SIZE) -> None:
        self.embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        dim = int(getattr(self.embedder, "dim", 0) or 0)
        with self._lock:
            todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        fresh = self.embedder.embed(todo) if todo else None
        with self._lock:
            for t, v in zip(todo, fresh if fresh is not None else []):
                self._cache[t] = np.asarray(v, dtype=np.float32)
            for t in texts:
                if t in self._cache:
                    self._cache.move_to_end(t)
            out = [self._cache[t] for t in texts] if texts else []
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if not out:
            return np.zeros((0, dim), dtype=np.float32)
        return np.vstack(out)

    def query(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed_query(text), dtype=np.float32)

    def grade(self, question: str, hits: Sequence[Hit]) -> list[Graded]:
        """Each hit with its relevance and evidence, in the order given."""
        if not hits:
            return []
        q = self.query(question)
        per = [split_sentences(h.text) or [" ".join(h.text.split())[:MAX_SENTENCE_CHARS] or "-"]
               for h in hits]
        flat = [s for ss in per for s in ss]
        sims = self.vectors(flat) @ q
        out, i = [], 0
        for h, ss in zip(hits, per):
            scores = [float(x) for x in sims[i:i + len(ss)]]
            i += len(ss)
            out.append(Graded(h, max(scores), ss, scores, pick_evidence(ss, scores)))
        return out

    def refine(self, question: str, answer: str, graded: Sequence[Graded]) -> None:
        """Re-pick each passage's evidence for the answer as given: the sentence closest to the
        question and the answer together (so a passage with two facts shows the one used)."""
        if not answer.strip() or not graded:
            return
        target = self.query(question) + self.query(answer)
        for g in graded:
            sims = self.vectors(g.sentences) @ target
            g.evidence = pick_evidence(g.sentences, [float(x) / 2 for x in sims])

    def check_answer(self, answer: str, graded: Sequence[Graded]) -> list[AnswerSentence]:
        """Each sentence of the answer, marked supported when some passage backs it.

        A sentence is backed when it is close in meaning to a passage sentence, or when most of
        its content words are in the passages; a number that appears in no passage always
        counts as unbacked (small models invent dates and amounts). Sentences with no content
        words ("Sure.") and those saying the notes do not tell are not claims: supported.
        """
        sents = split_sentences(answer, limit=40)
        if not sents:
            return []
        if not graded:
            return [AnswerSentence(s, not _is_claim(s)) for s in sents]
        passage_sents = [s for g in graded for s in g.sentences]
        owner = [k for k, g in enumerate(graded) for _ in g.sentences]
        words = set()
        numbers = set()
        for g in graded:
            words.update(content_words(g.hit.text))
            numbers.update(_numbers(g.hit.text))
        sims = self.vectors(sents) @ self.vectors(passage_sents).T
        out = []
        for i, s in enumerate(sents):
            best = int(np.argmax(sims[i]))
            if not _is_claim(s):
                out.append(AnswerSentence(s, True))
                continue
            cw = [w for w in content_words(_strip_marks(s)) if not w.isdigit()]
            share = sum(w in words for w in cw) / len(cw) if cw else 1.0
            novel_numbers = [n for n in _numbers(_strip_marks(s)) if n not in numbers]
            ok = (float(sims[i, best]) >= SUPPORT_THRESHOLD or share >= SUPPORT_WORD_SHARE) \
                and not novel_numbers
            out.append(AnswerSentence(s, ok, owner[best]))
        return out


def pick_evidence(sentences: Sequence[str], scores: Sequence[float]) -> str:
    """The best sentence, with the next (or previous) one when it is short or nearly as good."""
    best = max(range(len(sentences)), key=lambda k: scores[k])
    chosen = [best]
    near = [k for k in (best + 1, best - 1) if 0 <= k < len(sentences)]
    if near:
        other = max(near, key=lambda k: scores[k])
        if len(sentences[best]) < SHORT_SENTENCE or scores[other] >= 0.85 * scores[best]:
            chosen.append(other)
    return " ".join(sentences[k] for k in sorted(chosen))


_MARK = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_NOT_TOLD = re.compile(r"\b(?:do(?:es)? not|don't|doesn't|no|not)\b.*\b(?:say|mention|know|tell|"
                       r"contain|include|hold|information|sources?|notes?)\b", re.I)


def _strip_marks(s: str) -> str:
    return _MARK.sub("", s)


def _numbers(text: str) -> set[str]:
    return {n.rstrip(".,:") for n in _NUMBER.findall(text)}


def _is_claim(s: str) -> bool:
    bare = _strip_marks(s)
    return bool(content_words(bare)) and not _NOT_TOLD.search(bare)
