from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication

from deskmind.ui import clipboard_keeper
from deskmind.ui.clipboard_keeper import ClipboardKeeper


def test_every_format_comes_back_after_a_paste(qtbot):
    cb = QGuiApplication.clipboard()
    mime = QMimeData()
    mime.setText("before")
    mime.setHtml("<b>before</b>")
    mime.setData("application/x-deskmind-test", b"\x00\x01raw")
    cb.setMimeData(mime)

    keeper = ClipboardKeeper()
    keeper.save()
    keeper.put_text("dictated words")
    assert cb.text() == "dictated words"
    assert keeper.restore() is True

    back = cb.mimeData()
    assert back.text() == "before"
    assert "<b>before</b>" in back.html()
    assert bytes(back.data("application/x-deskmind-test")) == b"\x00\x01raw"


def test_an_empty_clipboard_stays_empty(qtbot):
    cb = QGuiApplication.clipboard()
    cb.clear()
    keeper = ClipboardKeeper()
    keeper.save()
    keeper.put_text("dictated")
    assert keeper.restore() is True
    assert cb.text() == ""


def test_a_clipboard_too_big_to_keep_is_reported_not_held(qtbot, monkeypatch):
    monkeypatch.setattr(clipboard_keeper, "MAX_SAVED_BYTES", 10)
    QGuiApplication.clipboard().setText("x" * 50)
    keeper = ClipboardKeeper()
    keeper.save()
    assert keeper.too_big
    assert keeper.restore() is False
