"""What the palette consumes: a stream of answer events, from the ask pipeline or from memory.

:class:`MemoryAnswerer` is the answer when no model runtime is reachable: the best passages from
memory, numbered like citations, and what to do to connect a model. The ask pipeline is adapted to
the same :class:`Answerer` shape, so the palette does not care which one it talks to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Protocol

from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)

CONNECT_HINT = (
    "To get written answers, connect a model: start a local runtime such as Ollama "
    "(`ollama serve`, then `ollama pull gemma3:1b`) or LM Studio, or add one in "
    "**Settings → Runtimes**. Deskmind finds runtimes on their usual local ports by itself."
)


@dataclass
class Citation:
    n: int
    source: str                     # uri or file path
    title: str | None
    kind: str
    locator: dict[str, Any] = field(default_factory=dict)
    snippet: str = ""
    source_id: int | None = None
    chunk_id: int | None = None


@dataclass
class RouteInfo:
    zone: str
    model: str
    provider: str = ""
    rule: str = ""
    reason: str = ""


@dataclass
class AskEvent:
    kind: str                       # route | citations | token | notice | tool | done
    text: str = ""
    route: RouteInfo | None = None
    citations: list[Citation] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


Turn = tuple[str, str]              # (question, answer)


class Answerer(Protocol):
    def stream(self, question: str, history: list[Turn]) -> AsyncIterator[AskEvent]: ...


def citation_from_hit(n: int, hit: Any) -> Citation:
    text = " ".join((getattr(hit, "text", "") or "").split())
    return Citation(n=n, source=hit.source, title=hit.title, kind=hit.kind,
                    locator=dict(hit.locator or {}), snippet=text[:300],
                    source_id=getattr(hit, "source_id", None), chunk_id=getattr(hit, "chunk_id", None))


class MemoryAnswerer:
    """Answers from memory search alone. Search runs in a worker; the answer streams in pieces."""

    def __init__(self, searcher: Callable[[], Any], workers: Workers, limit: int = 5,
                 reason: str = "no model runtime is reachable") -> None:
        self._searcher = searcher
        self.workers = workers
        self.limit = limit
        self.reason = reason

    async def stream(self, question: str, history: list[Turn],
                     reason: str | None = None) -> AsyncIterator[AskEvent]:
        """``reason``: why no model answers (the default says none is reachable)."""
        yield AskEvent("route", route=RouteInfo(zone="machine", model="memory search",
                                                provider="deskmind", rule="no-runtime",
                                                reason=f"{reason or self.reason}; showing memory search results"))
        result = await self.workers.run(lambda: self._searcher().search(question, limit=self.limit))
        cites = [citation_from_hit(i, h) for i, h in enumerate(result.hits, 1)]
        yield AskEvent("citations", citations=cites)
        if cites:
            parts = [f"**No model is connected**, so here is what your memory holds about this:\n\n"]
            for c in cites:
                name = c.title or c.source.rsplit("/", 1)[-1]
                parts.append(f"{c.n}. **{name}** [{c.n}]: {c.snippet[:220]}{'…' if len(c.snippet) > 220 else ''}\n")
        else:
            parts = ["**No model is connected** and nothing in memory matches this question.\n"]
        parts.append("\n" + CONNECT_HINT + "\n")
        for p in parts:
            yield AskEvent("token", text=p)
        yield AskEvent("done", data={"memory_only": True})
