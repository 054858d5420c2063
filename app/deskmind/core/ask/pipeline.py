"""The quick-ask pipeline: retrieve, route, build the prompt, stream, save the exchange.

Async-first: :meth:`AskPipeline.stream` is an async generator of :class:`AskEvent` that the
GUI (qasync) consumes directly; cancelling the consuming task stops the model's stream at once
and saves nothing. :func:`ask_sync` wraps it for the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from typing import Any, AsyncIterator, Callable

from deskmind.core.agents.audit import AuditLog
from deskmind.core.agents.permissions import (
    ApprovalRequest, Approver, Scopes, agent_config, ask_approval,
)
from deskmind.core.agents.tools import ToolBox
from deskmind.core.ask import extractive
from deskmind.core.ask.conversation import elliptical_follow_up, text_sent, with_earlier
from deskmind.core.ask.evidence import RELEVANCE_THRESHOLD, EvidenceFinder, Graded, split_sentences
from deskmind.core.ask.grounding import MIN_PASSAGE_CHARS, choose_passages, profile_for
from deskmind.core.ask.prompt import Citation, build_grounded, build_messages, conversation_text
from deskmind.core.ask.repetition import RepetitionGuard
from deskmind.core.ask.types import (  # noqa: F401  (re-exported: callers import them from here)
    ANSWER_TOKENS, MEMORY_EMPTY, NOTHING_RELEVANT, SMALL_ANSWER_TOKENS, AskEvent, AskOptions, AskResult, LazyEmbedder,
    Prepared,
)
from deskmind.core.errors import DeskmindError
from deskmind.core.memory.models import PRIVACY_LEVELS, Hit, NewChunk, SourceDraft
from deskmind.core.memory.store import SourcesGone
from deskmind.core.routing.config import RoutingConfig, privacy_rank
from deskmind.core.routing.dispatch import Dispatch, decide
from deskmind.core.routing.router import (
    Candidate, Inventory, ItemRef, RouteDecision, RouteRequest, keep_off_cloud, route_request,
    strictest,
)
from deskmind.core.runtimes.base import ChatRequest, EgressContext, Message, ToolCall

log = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 4
EXCLUDED_KINDS = frozenset({"conversation"})


class AskPipeline:
    """One question at a time per call; safe to reuse on one event loop."""

    def __init__(self, *, cfg: RoutingConfig, hub: Any, searcher: Any = None, store: Any = None,
                 remember: Callable[[SourceDraft], int] | None = None,
                 audit: AuditLog | None = None, approver: Approver | None = None,
                 tool_servers: Any = None, evidence: EvidenceFinder | None = None) -> None:
        self.cfg = cfg
        # Grades passages and answers with the memory's own embedder (see core.ask.evidence).
        if evidence is None and searcher is not None and getattr(searcher, "embedder_for", None):
            evidence = EvidenceFinder(LazyEmbedder(searcher.embedder_for))
        self.evidence = evidence
        self.tool_servers = tool_servers  # core.tools.registry.ToolServers: outside MCP tools
        self.hub = hub
        self.searcher = searcher
        self.store = store
        self.remember = remember
        self.audit = audit
        self.approver = approver

    # -- steps -----------------------------------------------------------------------

    def searches_memory(self, opts: AskOptions) -> bool:
        """Whether this ask reads memory at all (the agent's ceiling and the caller allow it)."""
        return (opts.use_memory and self.searcher is not None
                and agent_config(self.cfg, opts.agent).memory_ceiling is not None)

    def retrieve(self, question: str, opts: AskOptions) -> list[Hit]:
        scopes = Scopes(agent_config(self.cfg, opts.agent))
        ceiling = scopes.cfg.memory_ceiling
        if not self.searches_memory(opts):
            return []
        from deskmind.core.memory.search import SearchFilters

        allowed = [t for t in PRIVACY_LEVELS if privacy_rank(t) <= privacy_rank(ceiling)]

        def usable(h: Hit) -> bool:
            # Earlier answers are not evidence: citing them would let a model quote itself.
            return h.privacy in allowed and h.kind not in EXCLUDED_KINDS

        # A privacy filter makes the vector search score every allowed chunk; over-fetching
        # without it and dropping what is above the ceiling is much faster (the order among the
        # survivors is the same up to rank-fusion ties). Too few survivors: the filtered search.
        wide = self.searcher.search(question, opts.limit * 3).hits
        kept = [h for h in wide if usable(h)]
        if len(kept) >= opts.limit or len(wide) < opts.limit * 3:
            return kept[:opts.limit]
        hits = self.searcher.search(question, opts.limit * 3, SearchFilters(privacy=allowed)).hits
        return [h for h in hits if usable(h)][:opts.limit]

    async def plan(self, question: str, hits: list[Hit], opts: AskOptions) -> RouteDecision:
        return self.plan_with(await self.hub.inventory(), question, hits, opts)

    def plan_with(self, inv: Inventory, question: str, hits: list[Hit], opts: AskOptions) -> RouteDecision:
        req = RouteRequest(prompt=text_sent(question, opts.earlier), task=opts.task,
                           prompt_privacy=opts.prompt_privacy, items_cut_to=MIN_PASSAGE_CHARS,
                           items=[ItemRef(h.chunk_id, h.privacy, len(h.text)) for h in hits],
                           override=opts.model, override_within_rule=opts.model_within_rule,
                           answer_tokens=opts.max_tokens or ANSWER_TOKENS)
        decision = route_request(self.cfg, inv, req)
        if opts.avoid_models:
            decision.candidates = [c for c in decision.candidates if c.ref not in opts.avoid_models]
        agent = agent_config(self.cfg, opts.agent)
        if not agent.cloud:
            keep_off_cloud(decision, f"agent {opts.agent}",
                           opts.model if opts.model_within_rule else None)
        return decision

    # -- the whole thing -------------------------------------------------------------

    async def stream(self, question: str, opts: AskOptions | None = None) -> AsyncIterator[AskEvent]:
        opts = opts or AskOptions()
        if not question.strip():
            from deskmind.core.errors import UserInputError

            raise UserInputError("the question is empty")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        # What is running is learnt (loopback probes, cached briefly) while memory is searched.
        warm = asyncio.ensure_future(self.hub.inventory())
        try:
            hits = await asyncio.to_thread(self.retrieve, question, opts)
        except BaseException:
            warm.cancel()
            raise
        timings["retrieve_ms"] = (time.perf_counter() - t0) * 1000
        yield AskEvent("retrieved", data={"hits": len(hits)})

        # Passages are graded against the question while the route is planned.
        t = time.perf_counter()
        seen: dict[str, Inventory] = {}

        def plan(inv: Inventory) -> RouteDecision:
            seen["inv"] = inv
            return self.plan_with(inv, question, hits, opts)

        grading = asyncio.ensure_future(asyncio.to_thread(self.grade, question, hits))
        try:
            await warm
            decision = await decide(self.hub, plan)
        except BaseException:
            grading.cancel()
            raise
        timings["route_ms"] = (time.perf_counter() - t) * 1000
        graded = await grading
        searched = self.searches_memory(opts)
        joined = elliptical_follow_up(question, opts.earlier)
        if searched and joined and not any(g.relevant for g in graded):
            # "since when?" finds nothing by itself: search it with the question it follows.
            hits = await asyncio.to_thread(self.retrieve, joined, opts)
            graded = await asyncio.to_thread(self.grade, joined, hits)
            decision = await decide(self.hub, plan)
        inv = seen["inv"]
        tools = self._tools_in_play(opts)
        if searched and not tools and not any(g.relevant for g in graded):
            # Never a model's guess dressed as an answer from memory (no model is asked, so no
            # cloud approval either).
            async for ev in self._abstain(question, graded, graded, decision, timings, t0):
                yield ev
            return

        prompt_priv = opts.prompt_privacy or self.cfg.prompt_privacy
        d = Dispatch(decision, lambda cand: ask_approval(self.approver, ApprovalRequest(
            opts.agent, "cloud", f"send this request to {cand.ref} ({cand.zone})",
            {"provider": cand.provider, "model": cand.model})))
        async for cand in d.candidates():
            t = time.perf_counter()
            usable = d.visible(cand, graded, lambda g: g.hit.chunk_id)
            if searched and not tools and not any(g.relevant for g in usable):
                async for ev in self._abstain(question, graded, usable, decision, timings, t0):
                    yield ev
                return
            prep = await self.prepare(question, usable, cand, inv, opts)
            chosen, messages, cites, run_opts, profile = (prep.chosen, prep.messages, prep.citations,
                                                          prep.opts, prep.profile)
            messages = with_earlier(messages, opts.earlier)
            used = [g.hit for g, _ in chosen]
            timings["prompt_ms"] = (time.perf_counter() - t) * 1000
            route = {"provider": cand.provider, "model": cand.model, "zone": cand.zone,
                     "rule": decision.rule, "reason": decision.reason if cand is decision.candidates[0]
                     else f"{decision.reason}; fell back to {cand.ref} after: {d.fell_back_from()}",
                     "class": decision.klass,
                     "passages": len(chosen), "model_context": profile.context,
                     "model_parameters": profile.parameters}
            if opts.response_schema is not None:
                route["structured"] = await self._enforces_schema(cand)
            if prep.extract:
                # The model's size chose this form; with one sentence standing out, it is the
                # answer and the model is not asked.
                route["extractive"] = True
                route["model_asked"] = prep.ask_model
                if not prep.ask_model:
                    route["reason"] += ("; for a model this small the answer is the sentence of "
                                        "the notes that stands out, so it was not asked")
            yield AskEvent("route", data=route)
            if not prep.ask_model:
                text = prep.extract[0].answer
                timings["first_token_ms"] = (time.perf_counter() - t0) * 1000
                yield AskEvent("token", text=text)
                async for ev in self._finish(question, text, chosen, cites, route, timings, t0,
                                             [prompt_priv] + [h.privacy for h in used], opts,
                                             cand, None, [], []):
                    yield ev
                return
            # Prose only: a JSON answer repeats its keys, and tool results may quote the same
            # line on purpose.
            guard = (RepetitionGuard() if opts.response_schema is None and not tools
                     and not prep.extract else None)
            answer: list[str] = []
            calls_log: list[dict[str, Any]] = []
            tool_items: list[int] = []  # chunk ids tools showed the model
            privs = [prompt_priv] + [h.privacy for h in used]
            t_send = time.perf_counter()
            opened = await d.open(cand, self._converse(cand, decision, messages, used, run_opts, privs,
                                                       calls_log, tool_items))
            if opened is None:
                yield AskEvent("fallback", text=str(d.faults[-1]), data={"from": cand.ref})
                continue
            stopped = None
            async with contextlib.aclosing(opened.events) as talk:
                async for kind, payload in talk:
                    if kind == "token":
                        if not answer:
                            timings["first_token_ms"] = (time.perf_counter() - t0) * 1000
                            timings["runtime_first_token_ms"] = (time.perf_counter() - t_send) * 1000
                        answer.append(payload)
                        runaway = guard is not None and guard.feed(payload)
                        yield AskEvent("token", text=payload)
                        if runaway:
                            stopped = "repetition"
                            break  # closing the stream stops the model
                    else:
                        yield AskEvent("tool", data=payload)
            text = guard.answer() if guard is not None and stopped else "".join(answer)
            if guard is not None and stopped:
                yield AskEvent("stopped", text=f"stopped: the model began repeating itself "
                               f"(“{guard.repeated[:60]}”); the answer ends where it began",
                               data={"reason": stopped, "answer": text})
            if prep.extract and extractive.chosen_candidate(text, prep.extract) is None:
                # Cut short before the copy was whole: the best sentence, whole.
                log.info("the extractive answer was cut short (%r): the best sentence stands", text)
                text = prep.extract[0].answer
            async for ev in self._finish(question, text, chosen, cites, route, timings, t0, privs,
                                         opts, cand, stopped, calls_log, tool_items):
                yield ev
            return
        d.give_up()

    async def _finish(self, question: str, text: str, chosen: list[tuple[Graded, str]],
                      cites: list[Citation], route: dict[str, Any], timings: dict[str, float],
                      t0: float, privs: list[str], opts: AskOptions, cand: Candidate,
                      stopped: str | None, calls_log: list[dict[str, Any]],
                      tool_items: list[int]) -> AsyncIterator[AskEvent]:
        """Check the answer against its passages, save the exchange, yield the result."""
        result = AskResult(question, text, cites, route, timings, strictest(privs),
                           withheld=list(cand.withheld), tool_calls=calls_log,
                           grounded=bool(chosen), stopped=stopped)
        t = time.perf_counter()
        result.unsupported = await asyncio.to_thread(self._check, question, text, chosen, cites)
        timings["check_ms"] = (time.perf_counter() - t) * 1000
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        if opts.save and self.remember is not None and text.strip():
            result.saved_source_id = await asyncio.to_thread(self._save, result, tool_items)
        yield AskEvent("done", text=text, result=result)

    async def _enforces_schema(self, cand: Candidate) -> bool:
        try:
            rt = await self.hub.runtime(cand.provider)
        except DeskmindError:  # the request itself will meet the same fault and fall back
            return False
        if not getattr(rt, "structured_output", False):
            log.info("%s (%s) cannot constrain answers to a JSON schema: the answer is parsed as "
                     "it comes", cand.ref, getattr(rt, "kind", "?"))
            return False
        return True

    # -- grounding -------------------------------------------------------------------

    async def prepare(self, question: str, graded: list[Graded], cand: Candidate, inv: Any,
                      opts: AskOptions) -> "Prepared":
        """The prompt for this candidate: the relevant passages it may see, as many and as long
        as the model can use, and the options it runs with."""
        rt = await self.hub.runtime(cand.provider)
        profile = profile_for(cand.model, inv.providers.get(cand.provider), rt)
        usable = [g for g in graded if g.hit.chunk_id not in set(cand.withheld)]
        # The earlier turns and the question share the window with the passages.
        chosen = choose_passages(usable, profile, opts.limit, opts.max_tokens or ANSWER_TOKENS,
                                 len(text_sent(question, opts.earlier)))
        if self.searches_memory(opts):
            messages, cites = build_grounded(question, chosen, small=profile.small)
        else:
            messages, cites = build_messages(question, [])
        if profile.small and chosen and opts.response_schema is None and not self._tools_in_play(opts):
            # A small model's own words are mostly wrong: its answer is a sentence of the notes
            # (core.ask.extractive), copied under a grammar when several could answer.
            cands = extractive.candidates(chosen)
            if len(cands) > 1 and getattr(rt, "grammar_output", False):
                opts = dataclasses.replace(opts, temperature=0.0, grammar=extractive.grammar_for(cands),
                                           max_tokens=extractive.answer_tokens(cands))
                return Prepared(chosen, extractive.extract_messages(question, cands), cites, opts,
                                profile, extract=cands)
            return Prepared(chosen, messages, cites, opts, profile, extract=cands[:1], ask_model=False)
        if profile.small and chosen:
            # A small model sampling from a grounded prompt drifts off its sources, and what it
            # writes after its first two sentences is rarely in them. (Other work, such as
            # minutes or a note's clean-up, keeps the caller's options.)
            opts = dataclasses.replace(
                opts, temperature=0.0 if opts.temperature is None else opts.temperature,
                max_tokens=opts.max_tokens or SMALL_ANSWER_TOKENS)
        return Prepared(chosen, messages, cites, opts, profile)

    def grade(self, question: str, hits: list[Hit]) -> list[Graded]:
        """Each passage's relevance and evidence. Worker thread (it embeds)."""
        if not hits:
            return []
        if self.evidence is None:
            # No embedder: the full-text match is all that is known; each passage counts.
            out = []
            for h in hits:
                ss = split_sentences(h.text) or [h.text[:400]]
                out.append(Graded(h, 1.0, ss, [0.0] * len(ss), ss[0]))
            return out
        return self.evidence.grade(question, hits)

    def _check(self, question: str, answer: str, chosen: list[tuple[Graded, str]],
               cites: list[Citation]) -> list[str]:
        """Evidence re-picked for the answer given; the answer's sentences no passage backs.
        Worker thread. With no passage used, the whole answer is the model's own."""
        if not answer.strip():
            return []
        if not chosen or self.evidence is None:
            return [] if chosen else [s for s in split_sentences(answer, limit=40)]
        graded = [g for g, _ in chosen]
        self.evidence.refine(question, answer, graded)
        for c, g in zip(cites, graded):
            c.evidence = g.evidence
        return [s.text for s in self.evidence.check_answer(answer, graded) if not s.supported]

    def _tools_in_play(self, opts: AskOptions) -> bool:
        """Whether the model may look things up with tools (then memory alone is not all)."""
        if opts.tools:
            return True
        servers = self.tool_servers
        grants = getattr(getattr(servers, "cfg", None), "grants", None) or {}
        return any((grants.get(opts.agent) or {}).values())

    async def _abstain(self, question: str, graded: list[Graded], usable: list[Graded],
                       decision: RouteDecision, timings: dict[str, float],
                       t0: float) -> AsyncIterator[AskEvent]:
        """Say plainly that memory holds nothing relevant enough; no model is asked."""
        if any(g.relevant for g in graded):
            why = "the passages that match may not be shown to any model these rules allow"
        elif graded:
            best = max(graded, key=lambda g: g.relevance)
            why = (f"the closest passage, “{best.hit.title or best.hit.source}”, matches at "
                   f"{best.relevance:.2f}, under the {RELEVANCE_THRESHOLD:.2f} needed")
        else:
            why = "memory returned no passage"
        text = NOTHING_RELEVANT
        if not graded and self.store is not None and await asyncio.to_thread(self.store.is_empty):
            why, text = "memory is empty (nothing indexed yet)", MEMORY_EMPTY
        route = {"provider": "", "model": "", "zone": "machine", "rule": decision.rule,
                 "reason": f"no model asked: {why}", "class": decision.klass, "passages": 0}
        yield AskEvent("route", data=route)
        yield AskEvent("token", text=text)
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        result = AskResult(question, text, [], route, timings,
                           self.cfg.prompt_privacy, abstained=True)
        yield AskEvent("done", text=text, result=result)

    async def _converse(self, cand: Candidate, decision: RouteDecision, messages: list[Message],
                        used: list[Hit], opts: AskOptions, privs: list[str],
                        calls_log: list[dict[str, Any]],
                        tool_items: list[int]) -> AsyncIterator[tuple[str, Any]]:
        rt = await self.hub.runtime(cand.provider)
        toolbox = None
        gate = None
        scopes = Scopes(agent_config(self.cfg, opts.agent))
        if self.audit is not None and self.tool_servers is not None:
            from deskmind.core.agents.mcp_gate import mcp_gate_for

            gate = await mcp_gate_for(self.tool_servers, scopes, self.audit,
                                      zone_ceiling=self.cfg.ceilings[cand.zone], approver=self.approver)
            for server, why in (gate.unavailable.items() if gate else ()):
                calls_log.append({"tool": server, "arguments": {}, "decision": "failed", "detail": why})
                yield "tool", calls_log[-1]
        if (opts.tools or gate is not None) and self.audit is not None:
            toolbox = ToolBox(scopes, self.audit,
                              zone_ceiling=self.cfg.ceilings[cand.zone], searcher=self.searcher,
                              store=self.store, remember=self.remember, approver=self.approver,
                              external=gate, builtin=opts.tools)
        item_ids = [h.chunk_id for h in used]
        for _round in range(MAX_TOOL_ROUNDS + 1):
            offer = toolbox.offered() if toolbox and _round < MAX_TOOL_ROUNDS else []
            req = ChatRequest(model=cand.model, messages=messages, tools=offer,
                              max_tokens=opts.max_tokens or ANSWER_TOKENS, temperature=opts.temperature,
                              response_schema=opts.response_schema, grammar=opts.grammar,
                              egress=EgressContext(rule=decision.rule, item_ids=list(item_ids)))
            calls: list[ToolCall] = []
            text: list[str] = []
            # Closed at once when the consumer stops early (a runaway answer): the model stops.
            async with contextlib.aclosing(rt.chat(req)) as stream:
                async for ev in stream:
                    if ev.kind == "token":
                        text.append(ev.text)
                        yield "token", ev.text
                    elif ev.kind == "tool_calls":
                        calls.extend(ev.tool_calls)
            if not calls or toolbox is None:
                return
            messages = messages + [Message("assistant", "".join(text), tool_calls=calls)]
            for call in calls:
                res = await toolbox.call(call)
                calls_log.append({"tool": call.name, "arguments": call.arguments,
                                  "decision": res.decision, "id": call.id,
                                  "detail": res.content[:300] if res.decision in (
                                      "denied", "refused", "failed", "error") else ""})
                yield "tool", calls_log[-1]
                item_ids += list(res.item_ids)
                tool_items += list(res.item_ids)
                privs.append(res.privacy)
                messages.append(Message("tool", res.content, tool_call_id=call.id, name=call.name))

    def _save(self, r: AskResult, tool_items: list[int]) -> int | None:
        """Store the exchange as a conversation derived from every source it drew on (the cited
        ones and those a tool showed the model), so forgetting any of them forgets it too."""
        text = conversation_text(r.question, r.answer, r.citations)
        parents = {c.source_id for c in r.citations if c.source_id is not None}
        if tool_items and self.store is not None:
            parents |= self.store.sources_of_chunks(tool_items)
        draft = SourceDraft(uri=f"deskmind://conversation/{uuid.uuid4()}", kind="conversation",
                            title=r.question[:80], privacy=r.privacy, text=text, extractor="ask",
                            chunks=[NewChunk(text, {"turn": 1})],
                            metadata={"route": r.route, "citations": [c.to_dict() for c in r.citations]},
                            derived_from=sorted(parents))
        try:
            return self.remember(draft)
        except SourcesGone as exc:
            # A cited source was forgotten while the answer streamed: keeping the answer would
            # keep what was forgotten.
            log.info("conversation not saved: %s", exc)
            return None

    async def run(self, question: str, opts: AskOptions | None = None,
                  on_event: Callable[[AskEvent], None] | None = None) -> AskResult:
        async for ev in self.stream(question, opts):
            if on_event:
                on_event(ev)
            if ev.kind == "done":
                assert ev.result is not None
                return ev.result
        raise AssertionError("the ask stream ended without a result")


def build_pipeline(core: Any, hub: Any, *, approver: Approver | None = None,
                   cfg: RoutingConfig | None = None, tool_servers: Any = None) -> AskPipeline:
    from deskmind.core.routing.config import load_routing

    cfg = cfg or load_routing(core.paths.config_dir)
    return AskPipeline(cfg=cfg, hub=hub, searcher=core.searcher(), store=core.store,
                       remember=core.remember, audit=AuditLog(core.store), approver=approver,
                       tool_servers=tool_servers)
