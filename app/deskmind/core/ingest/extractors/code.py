"""Source code, chunked along symbol boundaries (functions, classes, methods).

Python is read with its own ``ast``; other languages with tree-sitter grammars from
tree-sitter-language-pack (pinned to a release whose wheel carries the grammars; later ones
download them at run time). Without a grammar, or when parsing fails, code is cut at blank
lines into blocks of about 60 lines. Each chunk's locator carries ``symbol`` (``Class.method``)
and its line range; the chunk text starts with the symbol's name so both full-text and
vector search find it by name.
"""

from __future__ import annotations

import ast
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deskmind.core.ingest.extractors.text import decode
from deskmind.core.ingest.types import Extracted, FileTypes, Section

log = logging.getLogger(__name__)

WINDOW_LINES = 60  # a symbol longer than this is cut into windows (the embedder sees 256 tokens)

# suffix -> tree-sitter language name
TREE_SITTER_LANGS = {
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "tsx", ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
    ".hh": "cpp", ".cs": "csharp", ".rb": "ruby", ".php": "php", ".kt": "kotlin",
    ".swift": "swift", ".scala": "scala", ".lua": "lua", ".sh": "bash", ".bash": "bash",
    ".zsh": "bash",
}
# Code-like files chunked by blank-line blocks.
PLAIN_CODE = [".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".sql", ".css",
              ".scss", ".xml", ".r", ".pl", ".pm", ".el", ".vim", ".ps1", ".bat", ".cmake", ".gradle",
              ".awk", ".tcl", ".mk"]

_SYMBOL_TYPES = {
    "function_declaration", "function_definition", "method_definition", "method_declaration",
    "generator_function_declaration", "class_declaration", "class_definition", "class_specifier",
    "struct_specifier", "abstract_class_declaration", "interface_declaration", "enum_declaration",
    "type_declaration", "function_item", "impl_item", "struct_item", "enum_item", "trait_item",
    "mod_item", "constructor_declaration", "method", "singleton_method", "class", "module",
    "object_declaration", "protocol_declaration", "namespace_definition", "function_signature",
}
_CONTAINERS = {"class_declaration", "class_definition", "class_specifier", "impl_item",
               "trait_item", "interface_declaration", "class", "module", "mod_item",
               "abstract_class_declaration", "object_declaration", "namespace_definition",
               "struct_specifier", "protocol_declaration"}


@dataclass
class Symbol:
    name: str
    start: int  # 0-based first line
    end: int    # 0-based last line (inclusive)
    children: list["Symbol"]


# -- Python ----------------------------------------------------------------------------

def _python_symbols(text: str) -> list[Symbol]:
    tree = ast.parse(text)

    def visit(nodes: list[ast.stmt], prefix: str) -> list[Symbol]:
        out = []
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
                name = prefix + node.name
                kids = visit(node.body, name + ".") if isinstance(node, ast.ClassDef) else []
                out.append(Symbol(name, start, (node.end_lineno or node.lineno) - 1, kids))
        return out

    return visit(tree.body, "")


# -- tree-sitter -----------------------------------------------------------------------

_parsers: dict[str, Any] = {}
_parsers_lock = threading.Lock()


def _parser(lang: str) -> Any | None:
    with _parsers_lock:
        if lang not in _parsers:
            try:
                from tree_sitter_language_pack import get_parser

                _parsers[lang] = get_parser(lang)
            except Exception as exc:  # not installed, or a grammar missing from the pack
                log.info("no tree-sitter grammar for %s (%s): cutting by blank lines", lang, exc)
                _parsers[lang] = None
        return _parsers[lang]


def _node_name(node: Any) -> str | None:
    n = node.child_by_field_name("name")
    if n is not None:
        return n.text.decode("utf-8", "replace")
    decl = node.child_by_field_name("declarator")
    while decl is not None:  # C/C++: int *foo(int) -> pointer_declarator -> function_declarator
        if decl.type in ("identifier", "field_identifier", "qualified_identifier", "destructor_name",
                         "operator_name", "type_identifier"):
            return decl.text.decode("utf-8", "replace")
        nxt = decl.child_by_field_name("declarator")
        if nxt is None:
            ident = next((c for c in decl.children if c.type.endswith("identifier")), None)
            return ident.text.decode("utf-8", "replace") if ident is not None else None
        decl = nxt
    n = node.child_by_field_name("type")  # Rust: impl Type { ... }
    if n is not None:
        return n.text.decode("utf-8", "replace")
    for child in node.named_children:  # Go: type_declaration -> type_spec(name)
        n = child.child_by_field_name("name")
        if n is not None:
            return n.text.decode("utf-8", "replace")
    return None


def _ts_symbols(lang: str, data: bytes) -> list[Symbol] | None:
    parser = _parser(lang)
    if parser is None:
        return None
    tree = parser.parse(data)

    def visit(node: Any, prefix: str, depth: int) -> list[Symbol]:
        out: list[Symbol] = []
        for child in node.children:
            if child.type in ("export_statement", "decorated_definition", "template_declaration"):
                out.extend(visit(child, prefix, depth))
                continue
            if child.type in _SYMBOL_TYPES:
                name = _node_name(child)
                if name is None:
                    continue
                full = prefix + name
                kids: list[Symbol] = []
                if child.type in _CONTAINERS and depth < 2:
                    body = child.child_by_field_name("body") or child
                    kids = visit(body, full + ".", depth + 1)
                out.append(Symbol(full, child.start_point[0], child.end_point[0], kids))
            elif child.type in ("declaration_list", "class_body", "field_declaration_list",
                                "body_statement", "block"):
                out.extend(visit(child, prefix, depth))
        return out

    return visit(tree.root_node, "", 0)


# -- symbols to sections ---------------------------------------------------------------

def _windows(lines: list[str], start: int, end: int, symbol: str | None) -> list[Section]:
    """Sections for lines[start..end], cut into windows, blank-only runs dropped."""
    out = []
    s = start
    while s <= end:
        e = min(end, s + WINDOW_LINES - 1)
        if e < end:  # prefer to cut at a blank line near the window's end
            for k in range(e, s + WINDOW_LINES // 2, -1):
                if not lines[k].strip():
                    e = k
                    break
        body = "\n".join(lines[s:e + 1])
        if any(ch.isalnum() for ch in body):  # not a lone closing brace
            loc: dict[str, Any] = {"symbol": symbol} if symbol else {}
            loc.update(line_start=s + 1, line_end=e + 1)
            text = f"{symbol}\n{body}" if symbol else body
            out.append(Section(text=text, locator=loc, line_start=s + 1))
        s = e + 1
    return out


def _sections(lines: list[str], symbols: list[Symbol], start: int, end: int,
              parent: str | None) -> list[Section]:
    out: list[Section] = []
    cur = start
    starts: dict[int, int] = {}
    for sym in symbols:
        starts[sym.start] = starts.get(sym.start, 0) + 1
    if any(n > 1 for n in starts.values()):
        # Several symbols on one line (minified code): no name would be true for the line.
        symbols = [s for s in symbols if starts[s.start] == 1]
    for sym in sorted(symbols, key=lambda x: x.start):
        if sym.start < cur or sym.start > end:
            continue
        if sym.start > cur:
            out += _windows(lines, cur, sym.start - 1, parent)
        if sym.children:
            first = min(c.start for c in sym.children)
            out += _windows(lines, sym.start, first - 1, sym.name) if first > sym.start else []
            out += _sections(lines, sym.children, first, min(sym.end, end), sym.name)
        else:
            out += _windows(lines, sym.start, min(sym.end, end), sym.name)
        cur = sym.end + 1
    if cur <= end:
        out += _windows(lines, cur, end, parent)
    return out


def extract_code(path: Path, data: bytes) -> Extracted:
    text = decode(data, path).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    suffix = path.suffix.lower()
    symbols: list[Symbol] | None = None
    language = "python" if suffix in (".py", ".pyi", ".pyw") else TREE_SITTER_LANGS.get(suffix)
    parser_used = "blocks"
    metadata: dict[str, Any] = {"language": language or suffix.lstrip(".") or "text"}
    try:
        if language == "python":
            symbols, parser_used = _python_symbols(text), "python-ast"
        elif language:
            symbols = _ts_symbols(language, text.encode("utf-8"))
            parser_used = "tree-sitter" if symbols is not None else "blocks"
    except SyntaxError as exc:
        metadata["warning"] = f"not valid {language}: {exc.msg} (line {exc.lineno}); cut by blank lines"
    sections = _sections(lines, symbols or [], 0, len(lines) - 1, None)
    if symbols:
        metadata["symbols"] = _names(symbols)[:500]
    return Extracted(title=path.name, text=text, sections=sections, extractor=f"code:{parser_used}",
                     metadata=metadata, presplit=True)


def _names(symbols: list[Symbol]) -> list[str]:
    out = []
    for s in symbols:
        out.append(s.name)
        out.extend(_names(s.children))
    return out


def register_types(types: FileTypes) -> None:
    types.register([".py", ".pyi", ".pyw"] + list(TREE_SITTER_LANGS) + PLAIN_CODE, "code", extract_code)
