"""The ask policy the palette talks to: which answerer answers, and falling back to memory.

The palette only consumes one stream of :class:`~deskmind.ui.answers.AskEvent`. Here the
question goes to the core's ask pipeline when it is installed; when no model may answer (a
:class:`DeskmindError` before the first token) the answer comes from memory search instead,
saying why. Permissions (may the quick-ask agent paste?), live reloads of the rules and closing
the runtimes on quit go through here too, so the composition root holds no ask policy.
GUI thread throughout.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from typing import Any, AsyncIterator, Callable

from deskmind.core.errors import DeskmindError
from deskmind.ui.answers import Answerer, AskEvent, MemoryAnswerer, Turn
from deskmind.ui.tasks import Workers

log = logging.getLogger(__name__)


def pipeline_installed() -> bool:
    # Only whether it is installed: importing it is left to the warm-up, off the GUI thread.
    return importlib.util.find_spec("deskmind.core.ask") is not None


class AskController:
    def __init__(self, core: Any, workers: Workers, *, answerer: Answerer | None = None,
                 hub_kw: dict[str, Any] | None = None) -> None:
        self.memory = MemoryAnswerer(core.searcher, workers)
        self.pipeline: Any = None  # PipelineAnswerer, when the ask pipeline is installed
        if answerer is None and pipeline_installed():
            from deskmind.ui.ask_wiring import GuiApprover, PipelineAnswerer

            answerer = self.pipeline = PipelineAnswerer(core, workers, approver=GuiApprover(),
                                                        **(hub_kw or {}))
        elif answerer is None:
            log.info("the ask pipeline is not installed: answering from memory")
        self.primary: Answerer = answerer or self.memory
        self._permissions_listeners: list[Callable[[], None]] = []

    @property
    def models_configurable(self) -> bool:
        """Whether rules, runtimes and agents exist to be set (the pipeline is installed)."""
        return self.pipeline is not None

    async def stream(self, question: str, history: list[Turn]) -> AsyncIterator[AskEvent]:
        answered = False
        try:
            async with contextlib.aclosing(self.primary.stream(question, history)) as events:
                async for ev in events:
                    answered = answered or ev.kind == "token"
                    yield ev
            return
        except DeskmindError as exc:
            if answered or self.primary is self.memory:
                raise
            log.info("answering from memory: %s", exc)
            reason = str(exc)
        async with contextlib.aclosing(self.memory.stream(question, history, reason=reason)) as events:
            async for ev in events:
                yield ev

    # -- permissions and live settings -------------------------------------------------------

    def may(self, scope: str) -> bool:
        """Whether the quick-ask agent holds a scope (paste, cloud...), from the rules as last read."""
        return self.pipeline is not None and self.pipeline.may(scope)

    def on_permissions_changed(self, fn: Callable[[], None]) -> None:
        self._permissions_listeners.append(fn)

    def settings_changed(self) -> None:
        """Rules, runtimes or agents were edited: permissions apply as soon as the file is read
        again, the next question uses the new rules and runtimes (no restart)."""
        if self.pipeline is not None:
            self.pipeline.reload(applied=self._permissions_applied)

    def _permissions_applied(self) -> None:
        for fn in self._permissions_listeners:
            fn()

    def set_inline_approval(self, ask: Callable[[Any], Any]) -> None:
        """Approvals are asked inside the palette while it answers (else in a box)."""
        approver = getattr(self.pipeline, "approver", None)
        if approver is not None and hasattr(approver, "inline"):
            approver.inline = ask

    async def inventory(self, refresh: bool = False) -> Any:
        """What can answer now (settings' runtimes test, routing explanation)."""
        return await self.pipeline.inventory(refresh=refresh)

    async def aclose(self) -> None:
        """Quit: close the tool servers and the runtime hub, on the loop that owns them."""
        if self.pipeline is not None:
            await self.pipeline.aclose()
