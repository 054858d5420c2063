"""The palette's answers from the core's quick-ask pipeline, and approvals asked in the GUI.

The pipeline's async stream runs on the GUI thread's asyncio loop (qasync): its HTTP client
is asynchronous, and its blocking steps (retrieval, saving) already run in threads. One runtime
hub (one HTTP client) lives as long as the app; a settings change rebuilds it for the next
question, so rules and runtimes apply live.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Callable

from PySide6.QtWidgets import QMessageBox

from deskmind.ui.answers import AskEvent, Citation, RouteInfo, Turn
from deskmind.ui.bridge import on_gui_thread
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)

APPROVAL_TIMEOUT_S = 120.0
MAX_TURNS_CARRIED = 3


class GuiApprover:
    """Asks the person with a non-modal box; no answer in time (or asked off the GUI thread)
    means no."""

    def __init__(self, timeout_s: float = APPROVAL_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.box: QMessageBox | None = None
        # Asks inside the palette while it answers (returns an awaitable, or None when it cannot).
        self.inline: Callable[[Any], Any] | None = None

    def __call__(self, req: Any) -> Any:
        if not on_gui_thread():
            log.warning("approval asked off the GUI thread: denied (%s)", req.summary)
            return False
        if self.inline is not None:
            asked = self.inline(req)
            if asked is not None:
                return asked
        return self._ask(req)

    async def _ask(self, req: Any) -> bool:
        fut: asyncio.Future[bool] = asyncio.get_event_loop().create_future()
        box = QMessageBox(QMessageBox.Icon.Question, "Deskmind: allow this?",
                          f"The {req.agent} agent wants to {req.summary}.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setObjectName("approvalBox")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.buttonClicked.connect(lambda b: fut.done() or fut.set_result(
            box.standardButton(b) == QMessageBox.StandardButton.Yes))
        box.finished.connect(lambda _r: fut.done() or fut.set_result(False))
        self.box = box
        box.open()
        try:
            return await asyncio.wait_for(fut, self.timeout_s)
        except asyncio.TimeoutError:
            return False
        finally:
            box.close()


class PipelineAnswerer:
    """Adapts :class:`deskmind.core.ask.pipeline.AskPipeline` to the palette's event stream."""

    def __init__(self, core: Any, workers: Workers, *, approver: Any = None,
                 hub_factory: Callable[..., Any] | None = None, **hub_kw: Any) -> None:
        self.core = core
        self.workers = workers
        self.approver = approver
        self.hub_factory = hub_factory   # (core, cfg, **hub_kw) -> RuntimeHub; make_hub when None
        self.hub_kw = hub_kw
        self.cfg: Any = None
        self.hub: Any = None
        self.tool_servers: Any = None  # outside MCP servers: kept while tools.toml is unchanged
        self.pipeline: Any = None
        self._stale = True
        self._version = 0       # of the rules file as last changed in settings
        self._rebuilding = asyncio.Lock()

    def _load_rules(self) -> Any:
        """Worker thread: the rules file as it is now."""
        from deskmind.core.routing.config import load_routing

        return load_routing(self.core.paths.config_dir)

    def reload(self, applied: Callable[[], None] | None = None) -> None:
        """Rules or runtimes changed (GUI thread). Permissions apply as soon as the file is read
        again (then ``applied()`` runs, on the GUI thread); the next question gets a new hub."""
        self._stale = True
        self._version += 1
        version = self._version

        def loaded(cfg: Any) -> None:
            if version != self._version:    # a later change is being read: that one counts
                return
            self.cfg = cfg
            if applied is not None:
                applied()

        self.workers.submit(self._load_rules, done=loaded,
                            failed=lambda e: log.warning("the changed rules could not be read: %s", e))

    async def _ensure(self) -> Any:
        # One rebuild at a time: a question and the settings' runtime test arriving together
        # after a change must not each build a hub (one would be left open) nor close the
        # hub the other has just made.
        async with self._rebuilding:
            if self.pipeline is None or self._stale:
                await self._rebuild()
        return self.pipeline

    async def _rebuild(self) -> None:
        from deskmind.core.ask.pipeline import build_pipeline
        from deskmind.core.ask.session import make_hub

        make = self.hub_factory or make_hub
        version = self._version
        cfg = await self.workers.run(self._load_rules)
        old, self.hub = self.hub, None
        if old is not None:
            await old.aclose()
        # Keys are read on the one keyring thread, never on the loop's pool.
        self.hub = await self.workers.run(lambda: make(self.core, cfg, secrets_executor=self.workers.secrets,
                                                       **self.hub_kw))
        await self._ensure_tools()
        self.pipeline = build_pipeline(self.core, self.hub, approver=self.approver, cfg=cfg,
                                       tool_servers=self.tool_servers)
        if version == self._version:    # else the rules changed meanwhile: the next question rebuilds
            self.cfg = cfg
            self._stale = False

    async def _ensure_tools(self) -> None:
        from deskmind.core.tools.registry import tool_servers_for

        try:
            fresh = await self.workers.run(lambda: tool_servers_for(self.core, secrets=self.hub_kw.get("secrets"),
                                                                    secrets_executor=self.workers.secrets))
        except Exception as exc:  # a broken tools.toml costs the tools, not the answer
            log.warning("tool servers not used: %s", exc)
            fresh = None
        old = self.tool_servers
        if old is not None and fresh is not None and old.cfg.to_toml() == fresh.cfg.to_toml():
            return  # unchanged: running servers stay up
        self.tool_servers = fresh
        if old is not None:
            await old.aclose()

    async def inventory(self, refresh: bool = False) -> Any:
        """What can answer now, from the hub the next question would use."""
        pipeline = await self._ensure()
        return await pipeline.hub.inventory(refresh=refresh)

    def may(self, scope: str) -> bool:
        """Whether the quick-ask agent holds a scope (paste, cloud...), from the rules file as
        last read: at the last question or the last settings change."""
        from deskmind.core.agents.permissions import agent_config

        return bool(getattr(agent_config(self.cfg, "quick-ask"), scope, False))

    async def stream(self, question: str, history: list[Turn]) -> AsyncIterator[AskEvent]:
        from deskmind.core.ask.pipeline import AskOptions

        pipeline = await self._ensure()
        # A follow-up: the model reads the last turns, memory is searched for the question alone.
        earlier = tuple((q, a) for q, a in history[-MAX_TURNS_CARRIED:])
        async for ev in pipeline.stream(question, AskOptions(earlier=earlier)):
            if ev.kind == "token":
                yield AskEvent("token", text=ev.text)
            elif ev.kind == "route":
                d = ev.data
                model = d.get("model") or "no model asked"
                if d.get("model_asked") is False:  # a small model's answer: a sentence of the notes
                    model = f"quoted from your notes ({model} not asked)"
                yield AskEvent("route", route=RouteInfo(zone=d.get("zone", ""), model=model,
                                                        provider=d.get("provider", ""), rule=d.get("rule", ""),
                                                        reason=d.get("reason", "")))
            elif ev.kind == "retrieved":
                yield AskEvent("notice", text=f"Read {ev.data.get('hits', 0)} passages from memory…")
            elif ev.kind == "stopped":
                yield AskEvent("notice", text=ev.text[:1].upper() + ev.text[1:])
            elif ev.kind == "fallback":
                yield AskEvent("notice", text=f"Trying the next model: {ev.text}")
            elif ev.kind == "tool":
                yield AskEvent("tool", data=dict(ev.data))
            elif ev.kind == "done" and ev.result is not None:
                yield AskEvent("citations", citations=[
                    Citation(n=c.n, source=c.source, title=c.title, kind=c.kind, locator=dict(c.locator or {}),
                             chunk_id=c.chunk_id, source_id=c.source_id, evidence=c.evidence)
                    for c in ev.result.citations])
                r = ev.result
                yield AskEvent("done", data={"saved_source_id": r.saved_source_id, "timings": r.timings,
                                             "answer": r.answer, "unsupported": list(r.unsupported),
                                             "grounded": r.grounded, "abstained": r.abstained,
                                             "stopped": r.stopped})

    async def aclose(self) -> None:
        if self.tool_servers is not None:
            await self.tool_servers.aclose()
            self.tool_servers = None
        if self.hub is not None:
            await self.hub.aclose()
            self.hub = None
