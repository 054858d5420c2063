from __future__ import annotations

import asyncio

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication

from deskmind.core.errors import DeskmindError
from deskmind.ui.answers import AskEvent, RouteInfo
from deskmind.ui.palette import Palette
from tests.ui.conftest import remember_note


class ScriptedStream:
    """An injected token stream: the shape the ask pipeline yields, paced like a runtime."""

    def __init__(self, tokens, delay=0.01, fail: Exception | None = None):
        self.tokens, self.delay, self.fail = tokens, delay, fail
        self.histories = []
        self.cancelled = False

    async def stream(self, question, history):
        self.histories.append(list(history))
        if self.fail:
            raise self.fail
        yield AskEvent("route", route=RouteInfo(zone="machine", model="gemma3:270m", provider="ollama",
                                                rule="default-local", reason="private material stays local"))
        try:
            for t in self.tokens:
                await asyncio.sleep(self.delay)
                yield AskEvent("token", text=t)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        yield AskEvent("done")


def make(qtbot, answerer, **kw):
    p = Palette(answerer, **kw)
    qtbot.addWidget(p)
    p.show_palette()
    qtbot.waitUntil(p.isVisible, timeout=2000)
    return p


def test_streams_markdown_with_route_and_explanation(qtbot, qloop):
    s = ScriptedStream(["# Plan\n\n", "- **first** ", "step\n", "- second step\n"])
    p = make(qtbot, s)
    assert p.focusWidget() is p.input          # real keyboard focus is checked under Xvfb (e2e)
    qtbot.keyClicks(p.input, "what is the plan?")
    qtbot.keyClick(p.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: p.task is not None and p.task.done(), timeout=5000)
    assert p.answer == "# Plan\n\n- **first** step\n- second step\n"
    html = p.view.toHtml()
    assert "<b>" in html or "font-weight:700" in html or "font-weight:600" in html   # rendered, not raw
    assert "**" not in p.view.toPlainText()
    assert "machine · gemma3:270m" in p.route_label.text()
    assert not p.route_detail.isVisible()
    p.route_label.linkActivated.emit("route")
    assert p.route_detail.isVisible() and "private material stays local" in p.route_detail.text()
    p.copy_answer()
    assert QGuiApplication.clipboard().text() == p.answer


def test_esc_cancels_stream_then_hides(qtbot, qloop):
    s = ScriptedStream(["tok "] * 400, delay=0.02)
    p = make(qtbot, s)
    p.input.setText("long one")
    p.submit()
    qtbot.waitUntil(lambda: len(p.answer) > 8, timeout=5000)
    qtbot.keyClick(p.input, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: p.task.done(), timeout=2000)
    assert s.cancelled and p.status.text() == "Cancelled" and p.isVisible()
    qtbot.keyClick(p.input, Qt.Key.Key_Escape)
    assert not p.isVisible()


def test_history_recall_and_follow_ups_keep_the_conversation(qtbot, qloop):
    s = ScriptedStream(["answer"], delay=0)
    p = make(qtbot, s)
    for q in ("first question", "second question"):
        p.input.setText(q)
        p.submit()
        qtbot.waitUntil(lambda: p.task.done(), timeout=3000)
    assert s.histories[1] == [("first question", "answer")]
    assert "first question" in p.view.toPlainText() and "second question" in p.view.toPlainText()
    qtbot.keyClick(p.input, Qt.Key.Key_Up)
    assert p.input.text() == "second question"
    qtbot.keyClick(p.input, Qt.Key.Key_Up)
    assert p.input.text() == "first question"
    qtbot.keyClick(p.input, Qt.Key.Key_Down)
    assert p.input.text() == "second question"
    p.new_conversation()
    p.input.setText("fresh")
    p.submit()
    qtbot.waitUntil(lambda: p.task.done(), timeout=3000)
    assert s.histories[-1] == []


def test_without_a_runtime_answers_from_memory_and_citations_open(qtbot, desktop):
    core = desktop.core
    remember_note(core, "The boiler service is booked for Thursday at nine.\n\n"
                        "Bring the warranty card for the boiler.", title="Boiler")
    remember_note(core, "Tomatoes need watering every evening.", title="Garden")

    class NoRuntime:
        async def stream(self, question, history):
            raise DeskmindError("nothing answered at http://127.0.0.1:11434 (Ollama)")
            yield  # pragma: no cover

    p = desktop.palette
    desktop.ask.primary = NoRuntime()     # the model side fails; the controller falls back
    desktop.show_palette()
    p.input.setText("when is the boiler service?")
    p.submit()
    qtbot.waitUntil(lambda: p.task.done(), timeout=10000)
    assert p.citations and p.citations[0].title == "Boiler"
    assert "Settings → Runtimes" in p.answer and "ollama serve" in p.answer
    assert "11434" in p.route_detail.text()                 # says why: what was tried
    assert "[1] Boiler" in p.cites_label.text()
    p.cites_label.linkActivated.emit("cite:1")
    browser = desktop.window("browser")
    qtbot.waitUntil(lambda: browser.item_view.item is not None, timeout=5000)
    assert browser.isVisible() and browser.item_view.item["source"].title == "Boiler"
    cursor = browser.item_view.text.textCursor()
    assert cursor.hasSelection() and "boiler" in cursor.selectedText().lower()


def test_dropped_files_are_indexed_and_askable(qtbot, desktop, tmp_path):
    f = tmp_path / "recipe.md"
    f.write_text("# Pancakes\n\nMix two eggs with flour and milk; rest ten minutes.\n")
    p = desktop.palette
    desktop.show_palette()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f))])
    ev = QDropEvent(QPoint(10, 10).toPointF(), Qt.DropAction.CopyAction, mime,
                    Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    p.dropEvent(ev)
    qtbot.waitUntil(lambda: "ask about them" in p.status.text(), timeout=20000)
    assert "Indexed 1" in p.status.text()
    p.input.setText("how long do pancakes rest?")
    p.submit()
    qtbot.waitUntil(lambda: p.task.done(), timeout=10000)
    assert any(c.source == str(f) for c in p.citations)


def test_paste_needs_the_permission(qtbot, qloop):
    s = ScriptedStream(["done"], delay=0)
    p = make(qtbot, s, can_paste=lambda: False)
    p.input.setText("q")
    p.submit()
    qtbot.waitUntil(lambda: p.task.done(), timeout=3000)
    assert p.copy_btn.isEnabled() and not p.paste_btn.isEnabled()
    assert "may not paste" in p.paste_btn.toolTip()
    allowed = make(qtbot, s, can_paste=lambda: True)
    allowed.input.setText("q")
    allowed.submit()
    qtbot.waitUntil(lambda: allowed.task.done(), timeout=3000)
    with qtbot.waitSignal(allowed.paste_requested, timeout=1000) as sig:
        allowed.paste_btn.click()
    assert sig.args == ["done"]


def test_empty_memory_says_what_to_do_until_something_is_remembered(qtbot, desktop):
    from deskmind.ui.palette import EMPTY_MEMORY_HINT

    p = desktop.palette
    p.show_palette()
    qtbot.waitUntil(p.isVisible, timeout=2000)
    qtbot.waitUntil(lambda: p.status.text() == EMPTY_MEMORY_HINT, timeout=3000)
    assert "Drop a folder" in p.status.text()
    p.hide()
    remember_note(desktop.core, "The boiler service is booked for Thursday.", title="Boiler")
    p.show_palette()
    qtbot.waitUntil(lambda: p.status.text() == "", timeout=3000)
