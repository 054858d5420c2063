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


# -- the recommended catalogue -----------------------------------------------------------


def _catalogue_page(qtbot, tmp_path: Path, **kw):
    paths = Paths.from_env({"DESKMIND_HOME": str(tmp_path / "home")})
    changed = []
    page = ModelFilesPage(paths, changed=lambda: changed.append(1), **kw)
    qtbot.addWidget(page)
    return page, paths, changed


def _row(page, entry_id: str) -> list[str]:
    from deskmind.core.models.catalogue import CATALOGUE

    ids = [e.id for e in page._entries.values()]
    r = ids.index(entry_id)
    assert len(ids) == len(page._entries) and len(CATALOGUE) >= 1
    return [page.catalogue.item(r, c).text() for c in range(5)]


def test_catalogue_lists_each_class_with_size_memory_and_fit(qtbot, tmp_path):
    from deskmind.core.models.catalogue import CATALOGUE

    page, _, _ = _catalogue_page(qtbot, tmp_path, ram_mb=2048)
    assert page.catalogue.rowCount() == len(CATALOGUE)
    assert {page.catalogue.item(r, 0).text() for r in range(len(CATALOGUE))} == {"fast", "general", "coder"}
    assert _row(page, "qwen2.5-0.5b") == ["fast", "Qwen2.5 0.5B Instruct (Q4_K_M)", "0.4 GB", "1.0 GB", "fits"]
    assert _row(page, "qwen2.5-3b")[3:] == ["3.5 GB", "too big (2.0 GB here)"]
    small, big = page.catalogue.buttons["qwen2.5-0.5b"], page.catalogue.buttons["qwen2.5-3b"]
    assert small.isEnabled() and small.text() == "Download and use for fast"
    assert not big.isEnabled() and "needs 3.5 GB" in big.toolTip()
    roomy, _, _ = _catalogue_page(qtbot, tmp_path / "roomy", ram_mb=64 * 1024)
    assert all(b.isEnabled() for b in roomy.catalogue.buttons.values())


def test_one_click_chooses_a_catalogue_model_already_in_the_library(qtbot, tmp_path):
    page, paths, changed = _catalogue_page(qtbot, tmp_path / "a", ram_mb=8192)
    here = write_gguf(library_dir(paths.data_dir) / "qwen2.5-0.5b-instruct-q4_k_m.gguf")
    page.refresh()
    button = page.catalogue.buttons["qwen2.5-0.5b"]
    assert button.text() == "Use for fast"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert chosen_model(paths, "fast") == here.resolve()
    assert changed == [1] and page._thread is None  # nothing was downloaded
    button = page.catalogue.buttons["qwen2.5-0.5b"]
    assert button.text() == "In use" and not button.isEnabled()
    assert chosen_model(paths, "general") is None  # one class only


def test_one_click_downloads_then_chooses_a_catalogue_model(qtbot, tmp_path):
    from deskmind.core.models.catalogue import CatalogueEntry

    srv = ModelServer(write_gguf(tmp_path / "tiny.gguf", n=200_000).read_bytes())
    try:
        entry = CatalogueEntry("tiny-coder", "coder", "Tiny Coder", srv.url("tiny-coder.gguf"), 1, 64)
        page, paths, changed = _catalogue_page(qtbot, tmp_path / "b", ram_mb=1024, catalogue=(entry,))
        button = page.catalogue.buttons["tiny-coder"]
        assert button.text() == "Download and use for coder"
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert not page.catalogue.buttons["tiny-coder"].isEnabled()  # while it downloads
        qtbot.waitUntil(lambda: page._thread is None, timeout=20000)
    finally:
        srv.close()
    assert chosen_model(paths, "coder") == (library_dir(paths.data_dir) / "tiny-coder.gguf").resolve()
    assert page.status.text() == "coder: tiny-coder.gguf" and changed == [1]
    assert page.catalogue.buttons["tiny-coder"].text() == "In use"


def test_a_pull_makes_its_egress_ledger_off_the_gui_thread(qtbot, tmp_path):
    """The ledger opens the memory database: never on the GUI thread."""
    import threading

    made_on = []

    def ledger():
        made_on.append(threading.current_thread())
        return None   # no ledger: the pull goes on without recording

    paths = Paths.from_env({"DESKMIND_HOME": str(tmp_path / "home")})
    page = ModelFilesPage(paths, ledger=ledger)
    qtbot.addWidget(page)
    srv = ModelServer(write_gguf(tmp_path / "tiny.gguf", n=50_000).read_bytes())
    try:
        page.source.setText(srv.url())
        qtbot.mouseClick(page.pull_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page._thread is None, timeout=20000)
    finally:
        srv.close()
    assert made_on and made_on[0] is not threading.main_thread()
