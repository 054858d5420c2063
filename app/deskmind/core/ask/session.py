"""Assemble runtimes, rules, ledger and pipeline from a :class:`Core`, on the running loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator, Callable

from deskmind.core.agents.permissions import Approver
from deskmind.core.ask.pipeline import AskEvent, AskOptions, AskPipeline, AskResult, build_pipeline
from deskmind.core.routing.config import RoutingConfig, load_routing
from deskmind.core.routing.ledger import EgressLedger
from deskmind.core.runtimes.base import Timeouts
from deskmind.core.runtimes.hub import RuntimeHub

log = logging.getLogger(__name__)


def make_hub(core: Any, cfg: RoutingConfig, *, secrets: Any = None, timeouts: Timeouts | None = None,
             targets: Any = None, embedded: Any = "auto", secrets_executor: Any = None) -> RuntimeHub:
    if secrets is None:
        from deskmind.core.secrets import SecretStore

        secrets = SecretStore()
    if embedded == "auto":
        from deskmind.core.runtimes.llamacpp import embedded_factory

        embedded = embedded_factory(core.engines, core.paths.config_dir)
    return RuntimeHub(cfg, secrets=secrets, egress=EgressLedger(core.store), timeouts=timeouts,
                      targets=targets, embedded=embedded, engines=core.engines,
                      secrets_executor=secrets_executor)


@contextlib.asynccontextmanager
async def ask_session(core: Any, *, approver: Approver | None = None, cfg: RoutingConfig | None = None,
                      **hub_kw: Any) -> AsyncIterator[AskPipeline]:
    from deskmind.core.tools.registry import tool_servers_for

    cfg = cfg or load_routing(core.paths.config_dir)
    hub = make_hub(core, cfg, **hub_kw)
    # Outside tool servers start on first use and stop when the session ends.
    tools = tool_servers_for(core, secrets=hub_kw.get("secrets"))
    try:
        yield build_pipeline(core, hub, approver=approver, cfg=cfg, tool_servers=tools)
    finally:
        await tools.aclose()
        await hub.aclose()


def ask_sync(core: Any, question: str, opts: AskOptions | None = None, *,
             on_event: Callable[[AskEvent], None] | None = None,
             approver: Approver | None = None, **hub_kw: Any) -> AskResult:
    """Blocking wrapper for the command line. Ctrl-C cancels the stream and saves nothing."""

    async def main() -> AskResult:
        async with ask_session(core, approver=approver, **hub_kw) as pipeline:
            return await pipeline.run(question, opts, on_event)

    return asyncio.run(main())
