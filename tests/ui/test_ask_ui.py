"""The palette over the real quick-ask pipeline, streaming from a loopback Ollama-protocol server."""

from __future__ import annotations

from tests.ui.conftest import close_app  # noqa: E402

import uuid

import pytest

import deskmind.core.ask.pipeline  # noqa: E402,F401

from deskmind.core.runtimes.base import Timeouts  # noqa: E402
from deskmind.core.secrets import SecretStore  # noqa: E402
from tests.fakes.llm_server import FakeLLMServer, Faults, Reply  # noqa: E402
from tests.ui.conftest import remember_note  # noqa: E402

FAST = Timeouts(connect=1.0, first_token=5.0, stall=3.0, request=10.0)


def rules(url: str, paste: bool) -> str:
    return f"""
[defaults]
discover = false

[providers.local]
kind = "ollama"
url = "{url}"

[classes]
general = ["local:fake-model:1b"]

[[rules]]
name = "local-first"
class = "general"
zones = ["machine"]

[agents.quick-ask]
memory_ceiling = "private"
write_memory = true
paste = {str(paste).lower()}
"""


@pytest.fixture
def ask_app(core, qtbot, qloop):
    from deskmind.ui.app import DesktopApp

    app = DesktopApp(core, tray_available=False, instance_name=f"deskmind-test-{uuid.uuid4().hex[:8]}",
                     hub_kw={"targets": (), "embedded": None, "timeouts": FAST,
                             "secrets": SecretStore(environ={})})
    assert app.start(hotkeys=False)
    qtbot.waitUntil(lambda: app.palette is not None, timeout=5000)
    yield app
    close_app(app)


def test_answer_streams_from_ollama_with_route_citations_and_follow_up(qtbot, ask_app):
    core = ask_app.core
    remember_note(core, "The spare house key is under the blue flower pot.", title="House key")
    reply = "The key is under the blue flower pot [1]. It has been there since **May**."
    with FakeLLMServer(reply=Reply(reply), faults=Faults(token_delay=0.02)) as srv:
        (core.paths.config_dir).mkdir(parents=True, exist_ok=True)
        (core.paths.config_dir / "routing.toml").write_text(rules(srv.url, paste=False))
        p = ask_app.palette
        ask_app.show_palette()
        p.input.setText("where is the spare key?")
        p.submit()
        qtbot.waitUntil(lambda: "flower" in p.answer, timeout=15000)
        assert not p.task.done()                          # tokens arrive while it streams
        qtbot.waitUntil(lambda: p.task.done(), timeout=15000)
        assert p.answer == reply
        assert "machine · fake-model:1b" in p.route_label.text()
        assert "local-first" in p.route_detail.text()
        assert p.citations and p.citations[0].title == "House key"
        assert "**" not in p.view.toPlainText()           # Markdown rendered
        sent = srv.chat_requests()[0].json()
        assert "blue flower pot" in sent["messages"][-1]["content"]   # grounded in memory
        assert sent.get("options", {}).get("num_ctx")     # context size set per request
        # the citation opens the note itself at its passage
        p.cites_label.linkActivated.emit("cite:1")
        browser = ask_app.window("browser")
        qtbot.waitUntil(lambda: browser.item_view.item is not None, timeout=5000)
        assert browser.item_view.item["source"].title == "House key"
        # a follow-up carries the conversation
        p.input.setText("since when?")
        p.submit()
        qtbot.waitUntil(lambda: p.task.done() and len(p.conversation) == 2, timeout=15000)
        # Searched with the question it follows ("since when?" alone finds nothing); the earlier
        # exchange reaches the model as turns of the conversation.
        msgs = srv.chat_requests()[1].json()["messages"]
        assert "since when?" in msgs[-1]["content"] and "blue flower pot" in msgs[-1]["content"]
        assert [m["content"] for m in msgs[:-1] if m["role"] == "user"][-1] == "where is the spare key?"
        assert any(m["role"] == "assistant" and "flower pot" in m["content"] for m in msgs[:-1])
        # The first exchange was saved as a conversation; the follow-up still cites the note
        # it came from, never the saved conversation (that would cite an answer as a source).
        assert [(c.title, c.kind) for c in p.citations][:1] == [("House key", "note")]
        assert "conversation" not in {c.kind for c in p.citations}
    assert not p.paste_btn.isEnabled()                   # the rules do not grant paste


def test_runtime_gone_falls_back_to_memory_and_says_how_to_connect(qtbot, ask_app):
    core = ask_app.core
    remember_note(core, "The wifi password is on the router's sticker.", title="Wifi")
    with FakeLLMServer() as srv:
        url = srv.url
    core.paths.config_dir.mkdir(parents=True, exist_ok=True)
    (core.paths.config_dir / "routing.toml").write_text(rules(url, paste=True))  # nobody listens
    p = ask_app.palette
    p.input.setText("wifi password?")
    p.submit()
    qtbot.waitUntil(lambda: p.task.done(), timeout=20000)
    assert p.citations and p.citations[0].title == "Wifi"
    assert "No model is connected" in p.answer and "ollama serve" in p.answer
    assert "memory search" in p.route_label.text()


def test_esc_cancels_the_runtime_stream(qtbot, ask_app):
    core = ask_app.core
    # A relevant note, so that the model is asked; words that never repeat, so that only Esc
    # ends the stream (a repeating one is cut by the repetition stop).
    remember_note(core, "The keynote talk lasts two hours.", title="Keynote")
    with FakeLLMServer(reply=Reply(" ".join(f"word{i}" for i in range(300))),
                       faults=Faults(token_delay=0.05)) as srv:
        core.paths.config_dir.mkdir(parents=True, exist_ok=True)
        (core.paths.config_dir / "routing.toml").write_text(rules(srv.url, paste=False))
        p = ask_app.palette
        ask_app.show_palette()
        p.input.setText("how long does the keynote talk last?")
        p.submit()
        qtbot.waitUntil(lambda: len(p.answer) > 20, timeout=15000)
        p.escape()
        qtbot.waitUntil(lambda: p.task.done(), timeout=3000)
        assert p.status.text() == "Cancelled" and p.answer.count("word") < 300
