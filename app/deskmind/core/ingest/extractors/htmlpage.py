"""HTML: the main text and the title; scripts, styles, navigation and page furniture dropped.

Read with the standard library's ``html.parser``, a tokenizer that builds no tree: the time it
takes grows with the size of the page, whatever its shape. HTML5 tree builders (Lexbor,
html5lib) look through the stack of open elements at every tag, which made a page of one
million nested ``<div>``\\ s take about 40 minutes; here the stack is capped at
:data:`MAX_DEPTH` (deeper tags still give their text, they are just not tracked). Headings
give sections with a heading path, as in Markdown. The page is fed in steps, so the time
budget is checked as it goes and what was read by then is kept.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from deskmind.core.ingest import budget as budget_mod
from deskmind.core.ingest.extractors.text import decode
from deskmind.core.ingest.types import Extracted, ExtractionError, FileTypes, Section

HTML_SUFFIXES = [".html", ".htm", ".xhtml", ".shtml"]
MAX_DEPTH = 512          # real pages nest a few dozen deep
FEED_CHARS = 1 << 20     # the time budget is checked between steps of this size
_DROP = {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "form",
         "nav", "header", "footer", "aside", "head", "title"}
_DROP_ROLES = {"navigation", "banner", "contentinfo"}
_BLOCKS = {"p", "div", "section", "article", "pre", "blockquote", "table", "ul", "ol", "dl", "figure",
           "address", "main"}
_LINES = {"li", "dt", "dd", "tr", "br", "figcaption", "caption"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr", "keygen"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Where the main text is, in order of preference; the whole body otherwise.
_REGIONS = ("main", "article", "role=main")
_MARK = "\ue000"  # heading marker: a private-use character, not in real pages
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n\s*")


class _PageText(HTMLParser):
    """Collects the text of the body and of the first main/article/role=main element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, str | None]] = []  # (tag, dropped, region it opens)
        self.dropping = 0
        self.parts: dict[str, list[str]] = {"body": [], **{r: [] for r in _REGIONS}}
        self.open_regions: list[str] = []
        self.seen_regions: set[str] = set()
        self.title: list[str] | None = None
        self.title_text: str | None = None
        self.heading: tuple[int, list[str]] | None = None

    def _emit(self, text: str) -> None:
        if self.heading is not None:
            self.heading[1].append(text)
            return
        self.parts["body"].append(text)
        for r in self.open_regions:
            self.parts[r].append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self.title_text is None and self.title is None:
            self.title = []
        if tag == "body":
            self.handle_endtag("head")  # a head left open ends where the body starts
        if tag in _VOID:
            if tag == "br" and not self.dropping:
                self._emit("\n")
            return
        a = dict(attrs)
        drop = (tag in _DROP or a.get("role") in _DROP_ROLES
                or (a.get("aria-hidden") or "").lower() == "true")
        region = None
        if tag in ("main", "article"):
            region = tag
        elif a.get("role") == "main":
            region = "role=main"
        if region in self.seen_regions:
            region = None  # only the first of each counts, as a selector's first match would
        if len(self.stack) >= MAX_DEPTH:
            if not (drop or self.dropping):
                self._starts(tag)
            return  # too deep to track: its text still counts, its end tag finds no match
        self.stack.append((tag, drop, region))
        if drop:
            self.dropping += 1
        if self.dropping:
            return
        if region is not None:
            self.seen_regions.add(region)
            self.open_regions.append(region)
        self._starts(tag)

    def _starts(self, tag: str) -> None:
        if tag in _HEADINGS and self.heading is None:
            self.heading = (int(tag[1]), [])
        elif tag in _BLOCKS:
            self._emit("\n\n")
        elif tag in _LINES:
            self._emit("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" and not self.dropping:
            self._emit("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.title is not None:
            self.title_text = " ".join("".join(self.title).split())
            self.title = None
        # Close up to the nearest open element of this name (implied ends of <p>, <li>...);
        # an end tag with no open element of its name is ignored, as browsers do.
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                break
        else:
            if tag in _HEADINGS:
                self._end_heading()
            return
        while len(self.stack) > i:
            name, dropped, region = self.stack.pop()
            if dropped:
                self.dropping -= 1
            if region is not None and region in self.open_regions:
                self.open_regions.remove(region)
            if name in _HEADINGS:
                self._end_heading()

    def _end_heading(self) -> None:
        if self.heading is None:
            return
        level, words = self.heading
        self.heading = None
        head = " ".join("".join(words).split())
        self._emit(f"\n{_MARK}{level}{head}\n" if head else "\n")

    def handle_data(self, data: str) -> None:
        if self.title is not None:
            self.title.append(data)
            return
        if not self.dropping:
            self._emit(data)

    def text(self) -> str:
        for r in _REGIONS:
            if r in self.seen_regions and "".join(self.parts[r]).strip():
                return "".join(self.parts[r])
        return "".join(self.parts["body"])


def html_to_text(markup: str) -> tuple[str | None, str, list[Section]]:
    """(title, text, sections) of an HTML document, read under the current file's budget."""
    m = budget_mod.meter()
    page = _PageText()
    for start in range(0, len(markup), FEED_CHARS):
        page.feed(markup[start:start + FEED_CHARS])
        if m.out_of_time() and start + FEED_CHARS < len(markup):
            m.note(f"kept the text of the first {budget_mod.size(start + FEED_CHARS)} of "
                   f"{budget_mod.size(len(markup))} of the page: stopped after {m.elapsed():.0f} s "
                   f"({m.time_limit()})")
            break
    page.close()
    page._end_heading()
    title = page.title_text or None
    lines = [_SPACES.sub(" ", ln).strip() for ln in page.text().split("\n")]
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
    except (AssertionError, ValueError) as exc:  # the tokenizer is lenient; a last guard
        raise ExtractionError(f"could not parse HTML: {exc}") from exc
    return Extracted(title=title or path.stem, text=text, sections=sections, extractor="html")


def register_types(types: FileTypes) -> None:
    types.register(HTML_SUFFIXES, "html", extract_html, isolate=True)
