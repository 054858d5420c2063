"""Settings → Gateway: clients, scopes and tokens through the core registry, live, and the
tray app serving MCP and the OpenAI-compatible API when switched on."""

from __future__ import annotations

from tests.ui.conftest import close_app  # noqa: E402

import socket
import tomllib
import uuid

import httpx
import pytest
from PySide6.QtWidgets import QLabel

import deskmind.core.gateway.stack  # noqa: E402,F401

from deskmind.core.gateway.clients import ClientRegistry, Scopes  # noqa: E402
from deskmind.core.runtimes.base import Timeouts  # noqa: E402
from deskmind.core.secrets import SecretStore  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port(deskmind_home) -> int:
    """The gateway's port, in settings.toml before the core reads it."""
    p = _free_port()
    (deskmind_home / "config").mkdir(parents=True, exist_ok=True)
    (deskmind_home / "config" / "settings.toml").write_text(
        f"# mine\n[gateway]\nport = {p}\nmcp_sessions_per_client = 5\nmax_connections = 300\n")
    return p


@pytest.fixture
def app(port, core, qtbot, qloop):
    from deskmind.ui.app import DesktopApp

    a = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                   hub_kw={"targets": (), "embedded": None, "secrets": SecretStore(environ={}),
                           "timeouts": Timeouts(connect=1.0, first_token=5.0, stall=3.0, request=5.0)})
    assert a.start(hotkeys=False)
    qtbot.waitUntil(lambda: a.palette is not None, timeout=15000)
    yield a
    if a.gateway._host is not None:
        a.gateway._host.stop()
    close_app(a)


def _page(app, qtbot):
    w = app.show_window("settings")
    w.show_page("Gateway")
    return w.pages["Gateway"]


def _registry(app) -> ClientRegistry:
    return ClientRegistry(app.core.store)


def test_the_limits_are_shown_as_settings_toml_sets_them(qtbot, app):
    page = _page(app, qtbot)
    text = page.findChild(QLabel, "gatewayLimits").text()
    assert text.startswith("Limits: 300 connections (300 from one address;")  # per address fits the total
    assert "5 MCP sessions per client, closed after 600 s unused" in text
    assert "192 requests answered at once, 64 for one client" in text
    assert "its body within 30 s and 4,096 KiB" in text and "settings.toml, [gateway]" in text


def test_add_grant_scopes_rotate_revoke_and_remove(qtbot, app):
    page = _page(app, qtbot)
    assert app.gateway._host is None  # nothing of the server is built while it is off
    page.new_name.setText("open-webui")
    page.add_btn.click()
    qtbot.waitUntil(lambda: "open-webui" in page.clients, timeout=10000)
    c = _registry(app).get("open-webui")
    assert c.granted and c.scopes.read == "private" and not c.scopes.ask

    page.scope_box("open-webui", "read").setCurrentText("personal")
    qtbot.waitUntil(lambda: page.clients["open-webui"].scopes.read == "personal", timeout=10000)
    page.scope_box("open-webui", "ask").setChecked(True)
    page.scope_box("open-webui", "ground").setChecked(True)
    qtbot.waitUntil(lambda: page.clients["open-webui"].scopes.ground, timeout=10000)
    s = _registry(app).get("open-webui").scopes
    assert (s.read, s.ask, s.ground, s.write, s.cloud) == ("personal", True, True, False, False)

    page.select("open-webui")
    page.token_btn.click()
    qtbot.waitUntil(lambda: page.token.text().startswith("dmk_"), timeout=10000)
    token = page.token.text()
    assert _registry(app).authenticate(token).name == "open-webui"
    assert "not shown again" in page.status.text()

    page.select("open-webui")
    page.revoke_btn.click()
    qtbot.waitUntil(lambda: page.clients["open-webui"].status == "revoked", timeout=10000)
    assert _registry(app).authenticate(token) is None
    assert not page.scope_box("open-webui", "ask").isEnabled()

    page.select("open-webui")
    page.remove_btn.click()
    qtbot.waitUntil(lambda: "open-webui" not in page.clients, timeout=10000)
    assert _registry(app).get("open-webui") is None and page.table.rowCount() == 0

    page.new_name.setText("not a name!")
    page.add_btn.click()
    assert "not a usable client name" in page.status.text()


def test_the_switch_serves_the_api_from_the_tray_and_changes_apply_live(qtbot, app, port):
    page = _page(app, qtbot)
    assert f"127.0.0.1:{port}" in page.serve.text() and not page.serve.isChecked()
    page.new_name.setText("script")
    page.add_btn.click()
    qtbot.waitUntil(lambda: "script" in page.clients, timeout=10000)
    page.select("script")
    page.token_btn.click()
    qtbot.waitUntil(lambda: page.token.text().startswith("dmk_"), timeout=10000)
    token = page.token.text()

    page.serve.setChecked(True)
    qtbot.waitUntil(lambda: app.gateway.running, timeout=30000)
    assert "Serving" in page.serve_status.text() and f"127.0.0.1:{port}" in page.serve_status.text()
    data = tomllib.loads((app.core.paths.settings_path).read_text())
    assert data["gateway"]["tray_serves"] is True and data["gateway"]["port"] == port
    assert "# mine" in app.core.paths.settings_path.read_text()  # the rest of the file kept

    url = f"http://127.0.0.1:{port}/v1/models"
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.get(url, headers=auth, timeout=30)
    assert r.status_code == 200 and "general" in [m["id"] for m in r.json()["data"]]
    assert httpx.get(url, timeout=30).status_code == 401

    # Revoking in the page cuts the client off the running server at once.
    page.select("script")
    page.revoke_btn.click()
    qtbot.waitUntil(lambda: page.clients["script"].status == "revoked", timeout=10000)
    assert httpx.get(url, headers=auth, timeout=30).status_code == 401

    page.serve.setChecked(False)
    qtbot.waitUntil(lambda: page.serve_status.text() == "Off", timeout=30000)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, headers=auth, timeout=5)
    assert tomllib.loads(app.core.paths.settings_path.read_text())["gateway"]["tray_serves"] is False


def test_a_taken_port_is_reported_clearly(qtbot, app, port):
    from deskmind.core.gateway.stack import Gateway, GatewayConfig, HttpServer

    # Another Deskmind already serves on that port (as 'deskmind serve' would).
    other = HttpServer(Gateway(app.core, GatewayConfig()).http_app(), port=port).start()
    try:
        page = _page(app, qtbot)
        page.serve.setChecked(True)
        qtbot.waitUntil(lambda: page.serve_status.text().startswith("Not serving"), timeout=30000)
        msg = page.serve_status.text()
        assert f"127.0.0.1:{port} is already in use by another Deskmind" in msg
        assert "deskmind serve" in msg and not app.gateway.running
    finally:
        other.stop()


def test_the_tray_serves_at_start_when_switched_on(qtbot, port, core, qloop):
    from deskmind.ui.app import DesktopApp

    core.settings_store.update("gateway", {"tray_serves": True})
    reg = ClientRegistry(core.store)
    reg.grant("cursor", Scopes(read="public"))
    token = reg.rotate_token("cursor")
    a = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                   hub_kw={"targets": (), "embedded": None, "secrets": SecretStore(environ={})})
    try:
        assert a.start(hotkeys=False)
        qtbot.waitUntil(lambda: a.gateway.running, timeout=30000)
        r = httpx.get(f"http://127.0.0.1:{port}/v1/models",
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 200
    finally:
        if a.gateway._host is not None:
            a.gateway._host.stop()
        close_app(a)
