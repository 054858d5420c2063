"""Settings → Storage → Back up now: a PostgreSQL memory is offered a pg_dump file name and
backed up by the real pg_dump; a SQLite memory keeps its database file name."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pgserver

from deskmind.core.app import Core
from deskmind.core.memory.pg.backup import BIN_ENV
from deskmind.ui.bridge import CoreBridge
from deskmind.ui.settings.storage_page import StoragePage
from deskmind.ui.tasks import Workers

PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"


def test_backup_name_and_file_follow_the_backend(qtbot, pg_url: str, tmp_path: Path, monkeypatch) -> None:
    local = Core()
    try:
        page = StoragePage(local, Workers(CoreBridge()))
        qtbot.addWidget(page)
        assert page.backup_suffix() == ".db"
    finally:
        local.close()

    monkeypatch.setenv("DESKMIND_DB", pg_url)
    monkeypatch.setenv(BIN_ENV, str(PG_BIN))
    shared = Core()
    try:
        page = StoragePage(shared, Workers(CoreBridge()))
        qtbot.addWidget(page)
        assert page.backup_suffix() == ".dump"
        dest = tmp_path / f"memory{page.backup_suffix()}"
        page.backup_to(str(dest))
        qtbot.waitUntil(lambda: page.status.text().startswith(("Backup written", "Backup failed")),
                        timeout=120_000)
        assert page.status.text().startswith(f"Backup written: {dest}"), page.status.text()
        listing = subprocess.run([str(PG_BIN / "pg_restore"), "--list", str(dest)],
                                 capture_output=True, text=True, timeout=60)
        assert listing.returncode == 0 and "TABLE public sources" in listing.stdout
    finally:
        shared.close()
