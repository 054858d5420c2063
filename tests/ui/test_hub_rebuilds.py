"""The palette's runtime hub is rebuilt after a settings change: two requests arriving together
(a question and the settings' runtime test) build one hub, and every replaced hub is closed."""

from __future__ import annotations

import asyncio

from tests.ui.conftest import no_runtime_hub


def _answerer(core, built):
    from deskmind.core.ask.session import make_hub
    from deskmind.ui.ask_wiring import PipelineAnswerer
    from deskmind.ui.bridge import CoreBridge
    from deskmind.ui.tasks import Workers

    def counting_hub(core, cfg, **kw):
        hub = make_hub(core, cfg, **kw)
        built.append(hub)
        return hub

    bridge = CoreBridge()
    return PipelineAnswerer(core, Workers(bridge), hub_factory=counting_hub, **no_runtime_hub())


def _together(qtbot, *coros):
    task = asyncio.ensure_future(asyncio.gather(*coros))
    qtbot.waitUntil(task.done, timeout=30000)
    return task.result()


def test_two_rebuilds_at_once_build_one_hub_and_close_the_replaced_one(qtbot, qloop, core):
    built: list = []
    answerer = _answerer(core, built)
    try:
        first, second = _together(qtbot, answerer._ensure(), answerer._ensure())
        assert first is second and len(built) == 1 and answerer.hub is built[0]

        answerer.reload()                              # rules or runtimes changed in settings
        qtbot.waitUntil(lambda: answerer.cfg is not None, timeout=10000)
        third, fourth = _together(qtbot, answerer._ensure(), answerer._ensure())
        assert third is fourth and third is not first
        assert len(built) == 2 and answerer.hub is built[1]
        assert built[0].client.is_closed and not built[1].client.is_closed
    finally:
        _together(qtbot, answerer.aclose())
    assert all(h.client.is_closed for h in built)
