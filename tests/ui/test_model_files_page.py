"""Settings → Model files driven through the real widget: pull with progress, cancel, use."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from deskmind.core.config.paths import Paths
from deskmind.core.models import chosen_model
from deskmind.core.models.download import library_dir
from deskmind.ui.settings.model_files_page import ModelFilesPage
from tests.core.models.test_choice_and_check import write_gguf
from tests.core.models.test_download import ModelServer


def _page(qtbot, tmp_path: Path):
    paths = Paths.from_env({"DESKMIND_HOME": str(tmp_path / "home")})
    changed = []
    page = ModelFilesPage(paths, changed=lambda: changed.append(1))
    qtbot.addWidget(page)
    return page, paths, changed


def test_pull_shows_progress_then_use_chooses_it(qtbot, tmp_path):
    page, paths, changed = _page(qtbot, tmp_path)
    srv = ModelServer(write_gguf(tmp_path / "tiny.gguf", n=300_000).read_bytes())
    try:
        values = []
        page.bar.valueChanged.connect(values.append)
        page.source.setText(srv.url())
        qtbot.mouseClick(page.pull_button, Qt.MouseButton.LeftButton)
        assert page.cancel_button.isEnabled()
        qtbot.waitUntil(lambda: page._thread is None, timeout=20000)
    finally:
        srv.close()
    assert "is in the library" in page.status.text(), page.status.text()
    assert page.bar.value() == 100 and len(values) >= 2
    assert page.files.count() == 1 and page.files.item(0).text().startswith("tiny.gguf")
    page.files.setCurrentRow(0)
    page.klass.setCurrentText("coder")
    qtbot.mouseClick(page.use_button, Qt.MouseButton.LeftButton)
    assert chosen_model(paths, "coder") == (library_dir(paths.data_dir) / "tiny.gguf").resolve()
    assert changed == [1]
    assert page.files.item(0).text().endswith("\u2190 coder")


def test_cancel_stops_the_pull_and_installs_nothing(qtbot, tmp_path):
    page, paths, _ = _page(qtbot, tmp_path)
    srv = ModelServer(write_gguf(tmp_path / "tiny.gguf", n=1_000_000).read_bytes())
    srv.piece_delay = 0.02
    try:
        page.source.setText(srv.url())
        qtbot.mouseClick(page.pull_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page.bar.value() > 0, timeout=20000)
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page._thread is None, timeout=20000)
    finally:
        srv.close()
    assert "cancelled" in page.status.text(), page.status.text()
    assert page.pull_button.isEnabled() and not page.cancel_button.isEnabled()
    assert page.files.count() == 0
    assert not (library_dir(paths.data_dir) / "tiny.gguf").exists()


def test_a_foreign_file_is_refused_with_its_reason(qtbot, tmp_path):
    page, paths, _ = _page(qtbot, tmp_path)
    bad = tmp_path / "page.gguf"
    bad.write_bytes(b"<html>sign in</html>")
    page.source.setText(str(bad))
    qtbot.mouseClick(page.pull_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page._thread is None, timeout=20000)
    assert "not a GGUF" in page.status.text()
    assert page.files.count() == 0
    qtbot.mouseClick(page.use_button, Qt.MouseButton.LeftButton)
    assert page.status.text() == "Select a model file first."
