"""The composition root's contracts: the GUI thread never opens, reads or writes the memory
database; keys are read on the one keyring thread; every CoreBridge signal is emitted by
something."""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path

import pytest

import deskmind
import deskmind.core.ask.pipeline  # noqa: F401  (the ask pipeline is installed)
from deskmind.core.secrets import SecretStore
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.ui.conftest import close_app, remember_note

PACKAGE = Path(deskmind.__file__).resolve().parent


@pytest.fixture
def db_use(monkeypatch):
    """(what, thread name) for every open of the memory database, read connection taken and
    write handed to the writer thread."""
    from deskmind.core.memory import store as store_mod
    from deskmind.core.memory.writer import Writer

    seen: list[tuple[str, str]] = []
    real_init, real_reader, real_call = store_mod.MemoryStore.__init__, store_mod.MemoryStore.reader, Writer.call

    def init(self, *a, **kw):
        seen.append(("open", threading.current_thread().name))
        real_init(self, *a, **kw)

    def reader(self):
        seen.append(("read", threading.current_thread().name))
        return real_reader(self)

    def call(self, *a, **kw):
        seen.append(("write", threading.current_thread().name))
        return real_call(self, *a, **kw)

    monkeypatch.setattr(store_mod.MemoryStore, "__init__", init)
    monkeypatch.setattr(store_mod.MemoryStore, "reader", reader)
    monkeypatch.setattr(Writer, "call", call)

    # On PostgreSQL (--memory-backend=postgres): opening the store, and every round trip of
    # its runner, which is where any read or write reaches the server.
    from deskmind.core.memory.pg.runner import PgRunner
    from deskmind.core.memory.pg.store import PgMemoryStore

    real_pg_init, real_run = PgMemoryStore.__init__, PgRunner._run

    def pg_init(self, *a, **kw):
        seen.append(("open", threading.current_thread().name))
        real_pg_init(self, *a, **kw)

    def run(self, fn, *, mode):
        seen.append(("write" if mode == "write" else "read", threading.current_thread().name))
        return real_run(self, fn, mode=mode)

    monkeypatch.setattr(PgMemoryStore, "__init__", pg_init)
    monkeypatch.setattr(PgRunner, "_run", run)
    return seen


def test_the_gui_thread_never_touches_the_database(qtbot, core, qloop, db_use):
    from deskmind.ui.app import DesktopApp

    ids: list[int] = []
    t = threading.Thread(target=lambda: ids.append(remember_note(core, "The boiler is serviced on Thursday.",
                                                                 title="Boiler")))
    t.start()
    t.join(60)
    core.close()                                     # the app opens it again, on first use
    db_use.clear()
    main = threading.main_thread().name
    app = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                     hub_kw={"targets": (), "embedded": None, "secrets": SecretStore(environ={})})
    try:
        assert app.start(hotkeys=False)
        qtbot.waitUntil(lambda: app.palette is not None, timeout=5000)
        app.show_palette()                           # the empty-memory hint asks the database
        qtbot.waitUntil(lambda: any(w == "read" for w, _t in db_use), timeout=5000)
        browser = app.show_window("browser")         # lists sources
        qtbot.waitUntil(lambda: browser.results.count() == 1, timeout=10000)
        app.open_source_id(ids[0])                   # a cited item opens
        qtbot.waitUntil(lambda: browser.item_view.item is not None, timeout=10000)
        settings = app.show_window("settings")       # gateway clients, storage figures
        gateway = settings.pages["Gateway"]
        qtbot.waitUntil(lambda: gateway.registry is not None and gateway._registry is not None, timeout=10000)
        storage = settings.pages["Storage"]
        storage.refresh()
        qtbot.waitUntil(lambda: "source" in storage.stats.text().lower(), timeout=10000)
        assert {w for w, _t in db_use} >= {"open", "read"}
        on_gui = [(w, th) for w, th in db_use if th == main]
        assert not on_gui, on_gui
    finally:
        close_app(app)


RULES = """
[defaults]
discover = false

[providers.lan]
kind = "openai"
url = "{url}"
zone = "home"
key = "lan"
models = ["fake-model:1b"]

[classes]
general = ["lan:fake-model:1b"]

[[rules]]
name = "local-first"
class = "general"
zones = ["home"]
"""


class RecordingKeyring:
    """A keyring backend module's surface (get_keyring, get_password): the key, and on which
    thread it was asked for."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.threads: list[str] = []

    def get_keyring(self):
        return self

    def get_password(self, service: str, name: str) -> str:
        self.threads.append(threading.current_thread().name)
        return self.value


def test_keys_are_read_on_the_keyring_thread(qtbot, core, qloop):
    from deskmind.ui.app import DesktopApp

    keyring = RecordingKeyring("sk-test-key")
    with FakeLLMServer(reply=Reply("From the remote model."), require_key="sk-test-key") as srv:
        core.paths.config_dir.mkdir(parents=True, exist_ok=True)
        (core.paths.config_dir / "routing.toml").write_text(RULES.format(url=srv.url))
        app = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                         hub_kw={"targets": (), "embedded": None,
                                 "secrets": SecretStore(keyring_module=keyring, environ={})})
        try:
            assert app.start(hotkeys=False)
            qtbot.waitUntil(lambda: app.palette is not None, timeout=5000)
            remember_note(core, "The remote model greets people with a friendly hello.", title="Greeting")
            p = app.palette
            p.input.setText("how does the remote model greet people?")
            p.submit()
            qtbot.waitUntil(lambda: p.task is not None and p.task.done(), timeout=20000)
            assert p.answer == "From the remote model.", (p.answer, p.route_detail.text())
            assert keyring.threads and all(t.startswith("deskmind-keyring") for t in keyring.threads), \
                keyring.threads
        finally:
            close_app(app)


def unemitted_signals(bridge_source: str, package: Path) -> list[str]:
    """Signals declared on CoreBridge that no module of ``package`` emits."""
    declared = re.findall(r"^    ([a-z][a-z_]*) = Signal\(", bridge_source, re.M)
    code = "\n".join(p.read_text(encoding="utf-8") for p in package.rglob("*.py"))
    return [name for name in declared if not re.search(rf"\b{name}\.emit\b", code)]


def test_every_bridge_signal_is_emitted(tmp_path):
    bridge = (PACKAGE / "ui" / "bridge.py").read_text(encoding="utf-8")
    assert unemitted_signals(bridge, PACKAGE) == []
    # the check sees a signal nothing emits
    planted = tmp_path / "pkg"
    planted.mkdir()
    source = "class Bridge:\n    used = Signal(str)\n    forgotten = Signal(str)\n"
    (planted / "bridge.py").write_text(source)
    (planted / "user.py").write_text("bridge.used.emit('x')\n")
    assert unemitted_signals(source, planted) == ["forgotten"]
