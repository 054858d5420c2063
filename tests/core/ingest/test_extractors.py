"""Each file type through the real indexer: what lands in memory and where it points."""

from __future__ import annotations

import gzip
from pathlib import Path

from deskmind.core.ingest.indexer import Indexer
from deskmind.core.memory.store import MemoryStore
from tests.core.ingest.conftest import chunks_of, make_docx, make_pdf, source_row


def test_markdown_headings_front_matter_and_links(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    (tmp_path / "other note.md").write_text("# Other\nllamas\n")
    note = tmp_path / "note.md"
    note.write_text(
        "---\ntitle: Garden plan\ntags: [plants, spring]\ndate: 2024-03-01\n---\n"
        "# Intro\n\nSee [the other](other%20note.md#top), [[Seeds|seed list]] and ![[map.png]].\n"
        "A [web link](https://example.org) is not an edge.\n\n## Tomatoes\n\nWater daily.\n")
    s = indexer.index([tmp_path])
    assert s.count("indexed") == 2
    row = source_row(store, note)
    assert row["title"] == "Garden plan"
    assert row["metadata"]["front_matter"]["date"] == "2024-03-01"
    assert row["metadata"]["tags"] == ["plants", "spring"]
    chunks = chunks_of(store, note)
    assert chunks[0][1]["heading"] == ["Intro"] and chunks[0][1]["line_start"] == 6
    assert chunks[1][1]["heading"] == ["Intro", "Tomatoes"]
    assert "title: Garden plan" not in chunks[0][0]
    from deskmind.core.ingest.links import outgoing

    edges = {(e.kind, e.target): e.target_id for e in outgoing(store, row["id"])}
    other_id = source_row(store, tmp_path / "other note.md")["id"]
    assert edges[("link", str(tmp_path / "other note.md"))] == other_id
    assert ("wikilink", "Seeds") in edges and ("embed", "map.png") in edges
    assert not any("example.org" in t for _, t in edges)


def test_broken_front_matter_still_indexes(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    f = tmp_path / "bad.md"
    f.write_text("---\ntags: [unclosed\n---\n# Body\ntext here\n")
    indexer.index([f])
    row = source_row(store, f)
    assert row["status"] == "indexed"
    assert "front matter not read" in row["metadata"]["warning"]


def test_text_encodings_are_decoded(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    samples = {
        "latin1.txt": ("Grüße aus München, ça va très bien. Æble og øl.", "latin-1"),
        "cp1252.log": ("Café “quoted” — naïve déjà vu costs 5 €.", "cp1252"),
        "utf16.txt": ("UTF-16 with a byte-order mark: ünïcödé ☃", "utf-16"),
        "utf8bom.txt": ("UTF-8 with BOM: ok ✓", "utf-8-sig"),
        "cyrillic.txt": ("Привет, мир! Это обычный текст в кодировке Windows-1251, и его надо прочитать.", "cp1251"),
    }
    for name, (text, enc) in samples.items():
        (tmp_path / name).write_bytes(text.encode(enc))
    s = indexer.index([tmp_path])
    assert s.count("indexed") == len(samples), s.to_dict()["problems"]
    for name, (text, _) in samples.items():
        assert chunks_of(store, tmp_path / name)[0][0] == text


def test_html_main_text_and_title(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    f = tmp_path / "page.html"
    f.write_text(
        "<html><head><title>Field  Guide</title><style>.x{color:red}</style>"
        "<script>var tracking = 'SCRIPTTEXT';</script></head><body>"
        "<nav><a href='/'>NAVLINK home</a></nav><header>BANNERTEXT</header>"
        "<main><h1>Birds</h1><p>Robins sing <b>early</b>.</p><h2>Owls</h2><p>Owls hunt at night.</p></main>"
        "<footer>FOOTERTEXT</footer></body></html>")
    indexer.index([f])
    assert source_row(store, f)["title"] == "Field Guide"
    chunks = chunks_of(store, f)
    text = " ".join(c[0] for c in chunks)
    assert "Robins sing early." in text and "Owls hunt at night." in text
    for junk in ("SCRIPTTEXT", "NAVLINK", "BANNERTEXT", "FOOTERTEXT", "color:red"):
        assert junk not in text
    assert chunks[-1][1]["heading"] == ["Birds", "Owls"]


def test_pdf_text_per_page_with_page_locator(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    f = tmp_path / "report.pdf"
    f.write_bytes(make_pdf(["Quarterly zebra census results.", "", "Flamingo migration notes."],
                           title="Census"))
    indexer.index([f])
    row = source_row(store, f)
    assert row["title"] == "Census" and row["metadata"]["pages"] == 3
    chunks = chunks_of(store, f)
    assert [(c[1]["page"], "zebra" in c[0], "Flamingo" in c[0]) for c in chunks] == [
        (1, True, False), (3, False, True)]


def test_python_code_by_symbols(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    f = tmp_path / "garden.py"
    f.write_text('"""Garden tools."""\nimport os\n\n\ndef water(plant):\n    return plant\n\n\n'
                 'class Greenhouse:\n    """Warm."""\n\n    def heat(self, degrees):\n        return degrees\n')
    indexer.index([f])
    chunks = chunks_of(store, f)
    by_symbol = {c[1].get("symbol"): c for c in chunks}
    assert set(by_symbol) == {None, "water", "Greenhouse", "Greenhouse.heat"}
    heat = by_symbol["Greenhouse.heat"]
    assert heat[0].startswith("Greenhouse.heat\n") and "def heat" in heat[0]
    assert (heat[1]["line_start"], heat[1]["line_end"]) == (12, 13)
    assert source_row(store, f)["metadata"]["symbols"] == ["water", "Greenhouse", "Greenhouse.heat"]


def test_javascript_and_go_by_tree_sitter(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    (tmp_path / "app.js").write_text(
        "import x from 'y';\nexport function render(el) {\n  return el;\n}\n"
        "class Store {\n  load() { return 1; }\n}\n")
    (tmp_path / "main.go").write_text("package main\n\nfunc (s *Server) Serve() error {\n\treturn nil\n}\n")
    indexer.index([tmp_path])
    js = {c[1].get("symbol") for c in chunks_of(store, tmp_path / "app.js")}
    assert {"render", "Store", "Store.load"} <= js
    assert "Serve" in {c[1].get("symbol") for c in chunks_of(store, tmp_path / "main.go")}
    assert source_row(store, tmp_path / "app.js")["metadata"]["language"] == "javascript"


def test_docx_headings_and_tables(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    import docx

    f = tmp_path / "plan.docx"
    f.write_bytes(make_docx([("Heading 1", "Project Plan"), (None, "We build a boat."),
                             ("Heading 2", "Budget"), (None, "Ten thousand coins.")]))
    d = docx.Document(str(f))
    t = d.add_table(rows=1, cols=2)
    t.rows[0].cells[0].text, t.rows[0].cells[1].text = "oars", "12"
    d.save(str(f))
    indexer.index([f])
    chunks = chunks_of(store, f)
    assert chunks[0][1]["heading"] == ["Project Plan"] and "We build a boat." in chunks[0][0]
    assert chunks[1][1]["heading"] == ["Project Plan", "Budget"]
    assert chunks[2] == ("oars | 12", {"table": 1})
    assert source_row(store, f)["title"] == "Project Plan"


def test_eml(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    f = tmp_path / "msg.eml"
    f.write_bytes(
        b"From: Ada <ada@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: Lunch on Friday\r\n"
        b"Date: Fri, 01 Mar 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Shall we try the caf=E9 by the river?\r\n")
    indexer.index([f])
    row = source_row(store, f)
    assert row["title"] == "Lunch on Friday" and row["metadata"]["from"] == "Ada <ada@example.org>"
    assert "café by the river" in chunks_of(store, f)[0][0]


def test_gzipped_docs_and_known_names(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    (tmp_path / "changelog.Debian.gz").write_bytes(gzip.compress(b"pkg (1.0) unstable; urgency=low\n\n  * Fixed the frobnicator.\n"))
    (tmp_path / "copyright").write_text("Copyright 2024 Someone. Licensed under the MIT licence.\n")
    s = indexer.index([tmp_path])
    assert s.count("indexed") == 2
    assert "frobnicator" in chunks_of(store, tmp_path / "changelog.Debian.gz")[0][0]


def test_minified_one_line_code_is_still_cut(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    f = tmp_path / "bundle.min.js"
    f.write_text("var a=1;" + " ".join(f"function f{n}(x){{return x+{n}}}" for n in range(3000)))
    indexer.index([f])
    chunks = chunks_of(store, f)
    assert len(chunks) > 10 and max(len(c[0]) for c in chunks) < 8000
    assert all(c[1]["line_start"] == 1 for c in chunks)


def test_files_without_extension_are_sniffed(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    (tmp_path / "groceries").write_text("eggs, flour, saffron\n")
    (tmp_path / "a.out").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    (tmp_path / "tool").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    s = indexer.index([tmp_path])
    assert "saffron" in chunks_of(store, tmp_path / "groceries")[0][0]
    tool = s.outcome(tmp_path / "tool")
    assert tool.status == "skipped" and tool.reason.startswith("unsupported file type (no extension, and not text")


def test_unknown_extensions_are_sniffed_too(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    (tmp_path / "import-tars.perl").write_text("#!/usr/bin/perl\n# Import tarballs into git as commits.\n"
                                               "my $committer_name = 'T Ar Creator';\n")
    (tmp_path / "swap.cocci").write_text("@@\ntype T;\nT tmp, a, b;\n@@\n- tmp = a;\n- a = b;\n- b = tmp;\n+ SWAP(a, b);\n")
    (tmp_path / "blob.xyz").write_bytes(b"\x00\x01binary" + bytes(range(256)))
    s = indexer.index([tmp_path])
    assert "tarballs" in chunks_of(store, tmp_path / "import-tars.perl")[0][0]
    assert "SWAP(a, b)" in chunks_of(store, tmp_path / "swap.cocci")[0][0]
    assert s.outcome(tmp_path / "import-tars.perl").kind == "text"
    blob = s.outcome(tmp_path / "blob.xyz")
    assert blob.status == "skipped" and blob.reason.startswith("unsupported file type (.xyz, and not text")
    again = indexer.index([tmp_path])                     # unchanged: not read or sniffed again
    assert {again.outcome(tmp_path / n).status for n in ("blob.xyz", "swap.cocci")} == {"unchanged"}
