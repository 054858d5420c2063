"""Markdown: chunks follow the heading structure; the heading path is in each locator."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt

from deskmind.core.ingest.extractors.text import decode
from deskmind.core.ingest.types import Extracted, Section, register

MD_SUFFIXES = [".md", ".markdown", ".mdown", ".mkd"]
_md = MarkdownIt("commonmark")


def split_by_headings(text: str) -> tuple[str | None, list[Section]]:
    """Sections between headings, each with its heading path and first line."""
    lines = text.split("\n")
    tokens = _md.parse(text)
    heads: list[tuple[int, int, str]] = []  # (line index, level, title)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            inline = tokens[i + 1]
            heads.append((tok.map[0], int(tok.tag[1]), inline.content.strip()))
    title = next((h[2] for h in heads if h[1] == 1), None)
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    bounds = [h[0] for h in heads] + [len(lines)]
    if heads and heads[0][0] > 0:
        pre = "\n".join(lines[: heads[0][0]])
        if pre.strip():
            sections.append(Section(text=pre, locator={}, line_start=1))
    elif not heads:
        return title, [Section(text=text, locator={}, line_start=1)]
    for n, (line, level, head) in enumerate(heads):
        path = [p for p in path if p[0] < level] + [(level, head)]
        body = "\n".join(lines[line: bounds[n + 1]])
        sections.append(Section(text=body, locator={"heading": [p[1] for p in path]},
                                line_start=line + 1))
    return title, sections


def extract_markdown(path: Path, data: bytes) -> Extracted:
    text = decode(data, path).replace("\r\n", "\n").replace("\r", "\n")
    title, sections = split_by_headings(text)
    return Extracted(title=title or path.stem, text=text, sections=sections, extractor="markdown")


register(MD_SUFFIXES, "markdown", extract_markdown)
