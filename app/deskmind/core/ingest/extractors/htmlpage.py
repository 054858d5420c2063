"""HTML: the main text and the title; scripts, styles, navigation and page furniture dropped.

Parsed with selectolax (the Lexbor HTML5 parser: a small wheel with no dependencies, and
fast enough to parse thousands of pages per second). Headings give sections with a heading
path, as in Markdown.
"""

from __future__ import annotations

import re
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from deskmind.core.ingest.extractors.text import decode
from deskmind.core.ingest.types import Extracted, ExtractionError, FileTypes, Section

HTML_SUFFIXES = [".html", ".htm", ".xhtml", ".shtml"]
_DROP = ("script, style, noscript, template, svg, canvas, iframe, object, form, nav, header, "
         "footer, aside, [role=navigation], [role=banner], [role=contentinfo], [aria-hidden=true]")
_BLOCKS = ("p, div, section, article, pre, blockquote, table, ul, ol, dl, figure, address")
_LINES = "li, dt, dd, tr, br, figcaption, caption"
_MARK = "\ue000"  # heading marker: a private-use character, not in real pages
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n\s*")


def html_to_text(markup: str) -> tuple[str | None, str, list[Section]]:
    """(title, text, sections) of an HTML document."""
    tree = LexborHTMLParser(markup)
    title_node = tree.css_first("title")
    title = " ".join(title_node.text().split()) if title_node else None
    for node in tree.css(_DROP):
        node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.css_first("[role=main]") or tree.body
    if root is None:
        return title, "", []
    for node in root.css("h1, h2, h3, h4, h5, h6"):
        head = " ".join(node.text().split())
        node.replace_with(f"\n{_MARK}{node.tag[1]}{head}\n" if head else "\n")
    for node in root.css(_BLOCKS):
        node.insert_before("\n\n")
    for node in root.css(_LINES):
        node.insert_before("\n")
    raw = root.text(separator="")
    lines = [_SPACES.sub(" ", ln).strip() for ln in raw.split("\n")]
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    buf: list[str] = []

    def flush() -> None:
        body = _BLANKS.sub("\n\n", "\n".join(buf)).strip()
        if body:
            loc = {"heading": [p[1] for p in path]} if path else {}
            sections.append(Section(text=body, locator=loc))

    for ln in lines:
        if ln.startswith(_MARK):
            flush()
            buf = []
            level, head = int(ln[1]), ln[2:].strip()
            path = [p for p in path if p[0] < level] + [(level, head)]
            buf.append(head)
        else:
            buf.append(ln)
    flush()
    if not title:
        title = next((s.locator["heading"][0] for s in sections if s.locator.get("heading")), None)
    text = "\n\n".join(s.text for s in sections)
    return title, text, sections


def extract_html(path: Path, data: bytes) -> Extracted:
    markup = decode(data, path)
    try:
        title, text, sections = html_to_text(markup)
    except Exception as exc:  # the parser is lenient; this is a last guard for odd bytes
        raise ExtractionError(f"could not parse HTML: {exc}") from exc
    return Extracted(title=title or path.stem, text=text, sections=sections, extractor="html")


def register_types(types: FileTypes) -> None:
    types.register(HTML_SUFFIXES, "html", extract_html, isolate=True)
