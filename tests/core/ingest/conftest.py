"""Ingestion test helpers: real stores, real files made on the spot (PDF via fpdf2, DOCX via
python-docx), and an indexer with or without the real embedder."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from deskmind.core.ingest.indexer import Indexer
from deskmind.core.memory.backend import memory_location, open_memory
from deskmind.core.memory.store import MemoryStore


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory):
    """The memory where DESKMIND_DB says (on_both_backends, --memory-backend), else a file."""
    s = open_memory(memory_location(tmp_path_factory.mktemp("db") / "memory.db"))
    yield s
    s.close()


@pytest.fixture
def indexer(store: MemoryStore) -> Indexer:
    """No embedder: parsing, statuses and chunks only (fast); search tests use ``core``."""
    return Indexer(store, None, transcriber=None)


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_docx(paragraphs: list[tuple[str | None, str]]) -> bytes:
    """``(style, text)`` pairs; style like "Heading 1" or None for body text."""
    import docx

    doc = docx.Document()
    for style, text in paragraphs:
        if style and style.startswith("Heading"):
            doc.add_heading(text, level=int(style.split()[-1]))
        else:
            doc.add_paragraph(text)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def chunks_of(store: MemoryStore, uri: str | Path) -> list[tuple[str, dict]]:
    import json

    rows = store.sql.query(
        "SELECT c.text, c.locator FROM chunks c JOIN sources s ON s.id = c.source_id "
        "WHERE s.uri = ? ORDER BY c.ord", (str(uri),))
    return [(r[0], json.loads(r[1])) for r in rows]


def source_row(store: MemoryStore, uri: str | Path) -> dict | None:
    row = store.sql.query_one(
        "SELECT id, status, error, kind, privacy, collection, metadata, title FROM sources WHERE uri = ?",
        (str(uri),))
    if row is None:
        return None
    import json

    return {"id": row[0], "status": row[1], "error": row[2], "kind": row[3], "privacy": row[4],
            "collection": row[5], "metadata": json.loads(row[6] or "{}"), "title": row[7]}


_INDEX_IN_CHILD = r"""
import json, sys
from deskmind.core.ingest.indexer import Indexer
from deskmind.core.memory.backend import open_memory
store = open_memory(sys.argv[1])
s = Indexer(store, None).index([sys.argv[2]])
print(json.dumps([o.__dict__ for o in s.outcomes]))
store.close()
"""


def index_without_read_rights(db: Path | str, tree: Path, restore: Callable[[], None]) -> dict[str, tuple]:
    """Index ``tree`` into ``db`` (a path or a memory URL) in a child process that file modes bind: {path: (status, reason)}.

    Root reads everything, so as root the child runs with a bounding set lacking
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv); as a normal user it simply runs as that
    user. ``restore`` puts the modes back, whatever happens."""
    cmd = [sys.executable, "-c", _INDEX_IN_CHILD, str(db), str(tree)]
    try:
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv (util-linux): cannot make a read fail honestly")
            cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] + cmd
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        restore()
    assert res.returncode == 0, res.stderr
    return {o["path"]: (o["status"], o["reason"]) for o in json.loads(res.stdout.splitlines()[-1])}
