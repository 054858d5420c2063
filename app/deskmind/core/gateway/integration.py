"""Wiring the gateway to routing, the runtimes and the ask pipeline.

Each outside client is handed to routing as an agent named ``client:<name>`` whose scopes
are the client's grant (memory ceiling, write, cloud); the grant is the person's standing
approval for the cloud, so no prompt is needed for a client they allowed to use it.

A :class:`~deskmind.core.runtimes.hub.RuntimeHub` belongs to one event loop: one is made on
first use in the loop that serves requests (uvicorn's, or the stdio server's).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from deskmind.core.errors import DeskmindError
from deskmind.core.gateway.openai_api import ChatCall, ChatStream
from deskmind.core.gateway.service import Caller, PermissionDenied
from deskmind.core.gateway.stack import Gateway, GatewayConfig

log = logging.getLogger(__name__)

CHAT_TASK = "chat"


def agent_name(caller: Caller) -> str:
    return f"client:{caller.name}"


class Runtimes:
    """The routing rules and a hub for the current event loop, made lazily."""

    def __init__(self, core: Any, routing: Any = None, hub_kw: dict[str, Any] | None = None) -> None:
        self.core = core
        self._cfg = routing
        self.hub_kw = dict(hub_kw or {})
        self._hub: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tools: Any = None
        self._tools_loop: asyncio.AbstractEventLoop | None = None

    @property
    def cfg(self) -> Any:
        if self._cfg is None:
            from deskmind.core.routing.config import load_routing

            self._cfg = load_routing(self.core.paths.config_dir)
        return self._cfg

    def hub(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._hub is None or self._loop is not loop:
            from deskmind.core.ask.session import make_hub

            self._hub = make_hub(self.core, self.cfg, **self.hub_kw)
            self._loop = loop
        return self._hub

    def tool_servers(self) -> Any:
        """The person's MCP tool servers, for clients granted tools in tools.toml (as agent
        ``client:NAME``); started on first use, on this loop."""
        loop = asyncio.get_running_loop()
        if self._tools is None or self._tools_loop is not loop:
            from deskmind.core.tools.registry import tool_servers_for

            self._tools = tool_servers_for(self.core, secrets=self.hub_kw.get("secrets"))
            self._tools_loop = loop
        return self._tools

    def cfg_for(self, caller: Caller) -> Any:
        """The rules with this client described as an agent with exactly its grant."""
        from deskmind.core.routing.config import AgentConfig

        s = caller.client.effective_scopes()
        agent = AgentConfig(name=agent_name(caller),
                            memory_ceiling=None if s.read == "none" else s.read,
                            write_memory=s.write, cloud=s.cloud)
        return dataclasses.replace(self.cfg, agents={**self.cfg.agents, agent.name: agent})

    async def aclose(self) -> None:
        tools, self._tools = self._tools, None
        if tools is not None:
            await tools.aclose()
        if self._hub is not None:
            try:
                await self._hub.aclose()
            except Exception as exc:  # closing on shutdown must not raise
                log.debug("closing the runtime hub: %s", exc)
            self._hub = None


def _standing_approval(caller: Caller) -> Any:
    def approve(req: Any) -> bool:
        # Only the cloud is decided here; nobody can approve a tool call from the gateway,
        # so tools that need an approval are denied (read-only ones a grant allows outright).
        return req.action == "cloud" and caller.client.effective_scopes().cloud
    return approve


class RoutedAsk:
    """The ``ask`` MCP tool: the quick-ask pipeline run as this client's agent."""

    def __init__(self, gateway: Gateway, runtimes: Runtimes) -> None:
        self.gw = gateway
        self.rt = runtimes

    async def __call__(self, caller: Caller, question: str, use_memory: bool) -> dict[str, Any]:
        from deskmind.core.agents.audit import AuditLog
        from deskmind.core.ask.pipeline import AskOptions, AskPipeline

        args = {"question": question, "use_memory": use_memory}
        self.gw.service.require_granted(caller, "ask", args)
        scopes = caller.client.effective_scopes()
        if not scopes.ask:
            raise self.gw.service._deny(caller, "ask", args,
                                        f"client '{caller.name}' may not ask the model runtimes")
        core = self.gw.core
        pipeline = AskPipeline(cfg=self.rt.cfg_for(caller), hub=self.rt.hub(),
                               searcher=self.gw.service.searcher, store=core.store,
                               remember=core.remember, audit=AuditLog(core.store),
                               approver=_standing_approval(caller),
                               tool_servers=self.rt.tool_servers())
        opts = AskOptions(use_memory=use_memory and scopes.read != "none",
                          agent=agent_name(caller), save=scopes.write, tools=False,
                          model_within_rule=True)
        try:
            result = await pipeline.run(question, opts)
        except DeskmindError as exc:
            self.gw.audit.record(caller.name, caller.surface, "ask", args=args, decision="failed",
                                 detail=str(exc))
            raise
        self.gw.audit.record(caller.name, caller.surface, "ask", args=args,
                             detail=f"answered by {result.route.get('provider')}:{result.route.get('model')}",
                             result_size=len(result.answer),
                             items=[f"chunk:{c.chunk_id}" for c in result.citations])
        out = result.to_dict()
        out["notice"] = "Citations point into the person's memory; fetch_item opens them."
        return out


class RoutedChat:
    """The OpenAI endpoint's backend: routing + runtimes, for multi-turn chats."""

    def __init__(self, gateway: Gateway, runtimes: Runtimes) -> None:
        self.gw = gateway
        self.rt = runtimes

    async def warm(self) -> None:
        """Refresh what is running (the hub caches it briefly); errors surface in open()."""
        try:
            await self.rt.hub().inventory()
        except DeskmindError as exc:
            log.debug("inventory: %s", exc)

    async def model_ids(self, caller: Caller) -> list[str]:
        cfg = self.rt.cfg
        ids = [c for c in cfg.classes if c != "embed"]
        inv = await self.rt.hub().inventory()
        for p in inv.providers.values():
            if not p.available or (p.zone == "cloud" and not (cfg.cloud and caller.client.scopes.cloud)):
                continue
            ids += [f"{p.name}:{m}" for m in p.models if "embed" not in m.lower()]
        return ids

    def _cfg_for_model(self, caller: Caller, model: str) -> tuple[Any, str | None]:
        """Rules and override for a model name: a class keeps every rule's zones and privacy
        handling but answers with that class; anything else is an explicit model choice, which
        routing keeps inside the matched rule's zones."""
        cfg = self.rt.cfg_for(caller)
        if model in ("auto", "default", "deskmind"):
            return cfg, None
        if model in cfg.classes:
            rules = [dataclasses.replace(r, klass=model, fallback=[]) for r in cfg.rules]
            return dataclasses.replace(cfg, rules=rules), None
        return cfg, model

    async def check(self, call: ChatCall) -> None:
        """Refuse now, before any memory is searched, a chat that would be refused whatever
        memory added: a privacy it may not lower, a model no runtime has or the rules forbid,
        no model able to answer."""
        from deskmind.core.routing.dispatch import decide

        await decide(self.rt.hub(), self._planner(call, with_memory=False))

    def _planner(self, call: ChatCall, *, with_memory: bool = True) -> Any:
        from deskmind.core.routing.config import privacy_rank
        from deskmind.core.routing.router import ItemRef, RouteRequest, keep_off_cloud, route_request

        caller = call.caller
        cfg, override = self._cfg_for_model(caller, call.model)
        if call.prompt_privacy and privacy_rank(call.prompt_privacy) < privacy_rank(cfg.prompt_privacy):
            # The rules decide how sensitive a chat is; a client may only ask for more care.
            raise self.gw.service._deny(
                caller, "chat", {"model": call.model, "prompt_privacy": call.prompt_privacy},
                f"deskmind.prompt_privacy '{call.prompt_privacy}' would make this chat less "
                f"private than the routing rules' prompt_privacy ('{cfg.prompt_privacy}'): a "
                "client may only raise it")
        items = [ItemRef(h["chunk_id"], h["privacy"], len(h["text"]))
                 for h in (call.memory if with_memory else [])]
        prompt = "\n".join(m.content for m in call.messages)

        def plan(inv: Any) -> Any:
            d = route_request(cfg, inv, RouteRequest(
                prompt=prompt, task=CHAT_TASK, items=items, override=override,
                override_within_rule=True, prompt_privacy=call.prompt_privacy,
                answer_tokens=call.max_tokens or 1024))
            if not caller.client.effective_scopes().cloud:
                keep_off_cloud(d, f"client {caller.name}", override)
            return d
        return plan

    async def open(self, call: ChatCall) -> ChatStream:
        from deskmind.core.agents.permissions import ApprovalRequest, ask_approval
        from deskmind.core.routing.dispatch import Dispatch, decide
        from deskmind.core.runtimes.base import ChatRequest, EgressContext

        caller = call.caller
        hub = self.rt.hub()
        decision = await decide(hub, self._planner(call))
        approver = _standing_approval(caller)
        d = Dispatch(decision, lambda cand: ask_approval(
            approver, ApprovalRequest(agent_name(caller), "cloud", f"chat via {cand.ref}")))
        async for cand in d.candidates():
            used = d.visible(cand, call.memory, lambda h: h["chunk_id"])
            req = ChatRequest(model=cand.model, messages=grounded(call.messages, used),
                              temperature=call.temperature, max_tokens=call.max_tokens,
                              tools=list(call.tools), sampling=call.sampling,
                              egress=EgressContext(rule=decision.rule,
                                                   item_ids=[h["chunk_id"] for h in used]))
            runtime = await hub.runtime(cand.provider)
            # The first event is awaited here, so a runtime that fails before answering moves
            # on to the next candidate instead of breaking the caller's stream.
            opened = await d.open(cand, runtime.chat(req))
            if opened is None:
                continue
            route = {"provider": cand.provider, "model": cand.model, "zone": cand.zone,
                     "rule": decision.rule, "class": decision.klass, "reason": decision.reason,
                     "withheld_items": sorted(cand.withheld), "fallbacks": list(d.failures)}
            return ChatStream(model=cand.ref, route=route, events=opened.events,
                              used_items=[h["chunk_id"] for h in used])
        d.give_up()


def grounded(messages: list[Any], hits: list[dict[str, Any]]) -> list[Any]:
    """The chat with the memory passages as numbered sources in a system message first."""
    if not hits:
        return list(messages)
    from deskmind.core.ask.prompt import MAX_SOURCE_CHARS, SYSTEM, locator_text
    from deskmind.core.runtimes.base import Message

    blocks = []
    for n, h in enumerate(hits, 1):
        where = locator_text(h.get("locator") or {})
        head = f"[{n}] {h.get('title') or h['source']}" + (f" ({where})" if where else "")
        blocks.append(f"{head}\n{h['text'][:MAX_SOURCE_CHARS]}")
    system = Message("system", SYSTEM + "\n\nSources from the person's memory:\n\n" + "\n\n".join(blocks))
    return [system, *messages]


def build_gateway(core: Any, config: GatewayConfig | None = None, *, routing: Any = None,
                  hub_kw: dict[str, Any] | None = None) -> Gateway:
    """A gateway with MCP ``ask`` and the OpenAI endpoint wired to routing and runtimes."""
    gw = Gateway(core, config)
    try:
        import deskmind.core.ask.pipeline  # noqa: F401
        import deskmind.core.ask.session  # noqa: F401
        import deskmind.core.routing.router  # noqa: F401
    except ImportError as exc:  # a core without the runtime pipeline: memory tools only
        log.warning("asking and chat are off: %s", exc)
        return gw
    rt = Runtimes(core, routing, hub_kw)
    gw.runtimes = rt
    gw.ask = RoutedAsk(gw, rt)
    gw.chat = RoutedChat(gw, rt)
    return gw


__all__ = ["build_gateway", "grounded", "RoutedAsk", "RoutedChat", "Runtimes", "PermissionDenied"]
