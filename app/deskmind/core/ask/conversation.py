"""A follow-up in a conversation: the earlier turns sent with a question, and the text to
search memory with when a short follow-up finds nothing by itself."""

from __future__ import annotations

import re
from typing import Sequence

from deskmind.core.runtimes.base import Message

EARLIER_ANSWER_CHARS = 600


def earlier_turns(earlier: Sequence[tuple[str, str]]) -> list[Message]:
    """A conversation's earlier turns as messages, each answer cut to
    :data:`EARLIER_ANSWER_CHARS` and without its citation marks (their numbers named the
    earlier question's passages, not this one's)."""
    turns: list[Message] = []
    for q, a in earlier:
        a = re.sub(r"\s*\[\d+\]", "", a)[:EARLIER_ANSWER_CHARS]
        turns += [Message("user", q), Message("assistant", a)]
    return turns


def text_sent(question: str, earlier: Sequence[tuple[str, str]]) -> str:
    """The question and the earlier turns sent with it (what shares the window with the
    passages, and what a routing rule sizes besides them)."""
    return "\n".join([*(m.content for m in earlier_turns(earlier)), question])


def with_earlier(messages: list[Message], earlier: Sequence[tuple[str, str]]) -> list[Message]:
    """The prompt with a conversation's earlier turns just before the question (its last
    message)."""
    if not earlier or not messages:
        return messages
    return messages[:-1] + earlier_turns(earlier) + messages[-1:]


FOLLOW_UP_WORDS = 4


def elliptical_follow_up(question: str, earlier: Sequence[tuple[str, str]]) -> str | None:
    """For a short follow-up ("since when?", "and the code?") the text to search memory with
    when the question alone finds nothing: the earlier question it follows, then it. Longer
    questions stand on their own (an unrelated new question must not find the last note)."""
    if not earlier or len(re.findall(r"\w+", question)) > FOLLOW_UP_WORDS:
        return None
    return f"{earlier[-1][0]} {question}"
