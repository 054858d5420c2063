"""Markdown: chunks follow the heading structure; the heading path is in each locator.

Front matter (YAML between ``---`` lines, or TOML between ``+++``) becomes metadata; links to
local files and Obsidian ``[[wikilinks]]`` / ``![[embeds]]`` become edges between sources.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import frontmatter
from markdown_it import MarkdownIt

from deskmind.core.ingest.extractors.text import decode
from deskmind.core.ingest.types import Extracted, FileTypes, Link, Section

log = logging.getLogger(__name__)

MD_SUFFIXES = [".md", ".markdown", ".mdown", ".mkd", ".mdx"]
_md = MarkdownIt("commonmark")
# Obsidian's syntax: [[Note]], [[Note#Heading]], [[Note|shown text]], ![[embedded.png]].
_WIKILINK = re.compile(r"(!?)\[\[([^\[\]|#^\n]+)(?:[#^][^\[\]|\n]*)?(?:\|([^\[\]\n]*))?\]\]")


def split_by_headings(text: str, tokens: list | None = None, first_line: int = 1) -> tuple[str | None, list[Section]]:
    """Sections between headings, each with its heading path and first line."""
    lines = text.split("\n")
    tokens = _md.parse(text) if tokens is None else tokens
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
            sections.append(Section(text=pre, locator={}, line_start=first_line))
    elif not heads:
        return title, [Section(text=text, locator={}, line_start=first_line)]
    carry: tuple[str, int] | None = None  # a heading with no body of its own
    for n, (line, level, head) in enumerate(heads):
        path = [p for p in path if p[0] < level] + [(level, head)]
        body = "\n".join(lines[line: bounds[n + 1]])
        start = first_line + line
        if carry is not None:
            body, start = carry[0] + "\n" + body, carry[1]
            carry = None
        own_body = "\n".join(lines[line + 1: bounds[n + 1]]).strip()
        if n + 1 < len(heads) and heads[n + 1][1] > level and not own_body:
            # "# Title" straight followed by "## Part": one chunk, not a chunk of one line.
            carry = (body, start)
            continue
        sections.append(Section(text=body, locator={"heading": [p[1] for p in path]},
                                line_start=start))
    return title, sections


def _plain(value: Any) -> Any:
    """Front matter values as JSON-friendly data (YAML gives dates and sets)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _front_matter(text: str) -> tuple[dict[str, Any], str, int, str | None]:
    """(metadata, body, lines taken by the front matter, problem)."""
    if not (text.startswith("---") or text.startswith("+++")):
        return {}, text, 0, None
    try:
        meta, body = frontmatter.parse(text)
    except Exception as exc:  # YAML errors come in many classes; the note is still indexed
        return {}, text, 0, f"front matter not read: {str(exc).splitlines()[0]}"
    if not meta:
        return {}, text, 0, None
    # frontmatter strips the body; find where it really starts to keep line numbers true.
    skipped = text.count("\n", 0, text.find(body[:40])) if body else text.count("\n")
    return _plain(dict(meta)), body, skipped, None


def _links(path: Path, tokens: list) -> list[Link]:
    links: list[Link] = []
    for tok in tokens:
        if tok.type != "inline" or not tok.children:
            continue
        for child in tok.children:
            if child.type in ("link_open", "image") and child.attrs:
                href = str(child.attrs.get("href") or child.attrs.get("src") or "")
                target = _local_target(path, href)
                if target:
                    links.append(Link(target, "embed" if child.type == "image" else "link"))
            elif child.type == "text" and "[[" in child.content:
                for m in _WIKILINK.finditer(child.content):
                    links.append(Link(m.group(2).strip(), "embed" if m.group(1) else "wikilink",
                                      (m.group(3) or "").strip() or None))
    return links


def _local_target(path: Path, href: str) -> str | None:
    if not href or href.startswith("#"):
        return None
    parts = urlsplit(href)
    if parts.scheme and parts.scheme != "file":
        return None  # web links are not edges between sources
    p = unquote(parts.path)
    if not p:
        return None
    target = Path(p) if p.startswith("/") else path.parent / p
    return str(Path(*target.parts).resolve(strict=False)) if target.parts else None


def extract_markdown(path: Path, data: bytes) -> Extracted:
    text = decode(data, path).replace("\r\n", "\n").replace("\r", "\n")
    meta, body, skipped, problem = _front_matter(text)
    tokens = _md.parse(body)
    title, sections = split_by_headings(body, tokens, first_line=1 + skipped)
    metadata: dict[str, Any] = {}
    if meta:
        metadata["front_matter"] = meta
        if isinstance(meta.get("tags"), (list, str)):
            tags = meta["tags"] if isinstance(meta["tags"], list) else re.split(r"[,\s]+", meta["tags"])
            metadata["tags"] = [str(t).lstrip("#") for t in tags if str(t).strip()]
        if meta.get("title"):
            title = str(meta["title"])
    if problem:
        metadata["warning"] = problem
    return Extracted(title=title or path.stem, text=text, sections=sections, extractor="markdown",
                     metadata=metadata, links=_links(path, tokens))


def register_types(types: FileTypes) -> None:
    types.register(MD_SUFFIXES, "markdown", extract_markdown)
