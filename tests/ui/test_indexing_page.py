"""Settings → Indexing: the budget per file, saved to settings.toml [extraction] through the
real settings store, and a save that fails says why and changes nothing."""

from __future__ import annotations

import tomllib
from pathlib import Path

from deskmind.core.config.store import SettingsStore
from deskmind.ui.bridge import CoreBridge
from deskmind.ui.settings.indexing_page import IndexingPage
from deskmind.ui.tasks import Workers


def _page(qtbot, path: Path) -> tuple[IndexingPage, SettingsStore]:
    store = SettingsStore(path)
    page = IndexingPage(store, Workers(CoreBridge()))
    qtbot.addWidget(page)
    return page, store


def test_shows_the_defaults_and_saves_changes(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("# my notes\n[ingest]\nmax_file_mb = 20\n")
    page, store = _page(qtbot, path)
    assert (page.text_mb.value(), page.inflated_mb.value(), page.pages.value(), page.seconds.value()) == (
        16.0, 256.0, 3000, 120.0)
    assert page.memory_mb.value() == 1024 and page.isolate.isChecked()
    page.text_mb.setValue(4.5)
    page.pages.setValue(5000)
    page.seconds.setValue(30)
    page.isolate.setChecked(False)
    page.apply_btn.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Saved"), timeout=5000)
    on_disk = tomllib.loads(path.read_text())
    assert on_disk["extraction"] == {"max_text_mb": 4.5, "max_inflated_mb": 256.0, "max_pages": 5000,
                                     "max_seconds": 30.0, "parser_memory_mb": 1024, "parser_processes": False}
    assert on_disk["ingest"] == {"max_file_mb": 20} and path.read_text().startswith("# my notes")
    assert store.settings.extraction.max_pages == 5000 and page.apply_btn.isEnabled()


def test_a_save_that_fails_says_why(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    page, _ = _page(qtbot, path)
    path.write_text("[extraction\nbroken = \n")  # edited by hand meanwhile, badly
    page.pages.setValue(10)
    page.apply_btn.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Not saved"), timeout=5000)
    assert "fix or remove the file, nothing was changed" in page.status.text()
    assert path.read_text() == "[extraction\nbroken = \n" and page.apply_btn.isEnabled()
