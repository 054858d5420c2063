"""Ingestion test helpers: real stores, real files made on the spot (PDF via fpdf2, DOCX via
python-docx), and an indexer with or without the real embedder."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from deskmind.core.ingest.indexer import Indexer
from deskmind.core.memory.store import MemoryStore


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory):
    s = MemoryStore(tmp_path_factory.mktemp("db") / "memory.db")
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

    rows = store.reader().execute(
        "SELECT c.text, c.locator FROM chunks c JOIN sources s ON s.id = c.source_id "
        "WHERE s.uri = ? ORDER BY c.ord", (str(uri),)).fetchall()
    return [(r[0], json.loads(r[1])) for r in rows]


def source_row(store: MemoryStore, uri: str | Path) -> dict | None:
    row = store.reader().execute(
        "SELECT id, status, error, kind, privacy, collection, metadata, title FROM sources WHERE uri = ?",
        (str(uri),)).fetchone()
    if row is None:
        return None
    import json

    return {"id": row[0], "status": row[1], "error": row[2], "kind": row[3], "privacy": row[4],
            "collection": row[5], "metadata": json.loads(row[6] or "{}"), "title": row[7]}
