"""Ignore files are read from the root down, the last matching pattern deciding, as Git does."""

from __future__ import annotations

from pathlib import Path

from deskmind.core.ingest.ignore import ignored_by_path
from deskmind.core.ingest.indexer import Indexer
from deskmind.core.memory.store import MemoryStore


def _indexed(summary, root: Path) -> list[str]:
    return sorted(Path(o.path).relative_to(root).as_posix()
                  for o in summary.outcomes if o.status == "indexed")


def test_negation_in_a_nested_gitignore_re_includes_a_file(tmp_path: Path, store: MemoryStore) -> None:
    root = tmp_path.resolve()
    files = ["a.log", "sub/keep.log", "sub/other.log", "sub/deeper/keep.log", "sub/deeper/x.log",
             "sub/deeper/notes.md", "sub/deeper/drop.md"]
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"text of {rel}\n")
    (root / ".gitignore").write_text("*.log\n")
    (root / "sub" / ".gitignore").write_text("!keep.log\n")
    # Deeper again: exclude what the parent re-included, by a later (deeper) rule.
    (root / "sub" / "deeper" / ".gitignore").write_text("keep.log\ndrop.md\n")
    s = Indexer(store, None).index([root])
    assert _indexed(s, root) == ["sub/deeper/notes.md", "sub/keep.log"]

    # The watcher's single-path check follows the same order.
    assert ignored_by_path(root / "sub" / "keep.log", root) is None
    assert ignored_by_path(root / "sub" / "other.log", root) == "matched an ignore rule"
    assert ignored_by_path(root / "sub" / "deeper" / "keep.log", root) == "matched an ignore rule"


def test_ignore_files_beat_settings_patterns_and_deskmindignore_beats_gitignore(
        tmp_path: Path, store: MemoryStore) -> None:
    root = tmp_path.resolve()
    for rel in ("a.md", "b.md", "c.md"):
        (root / rel).write_text(f"text of {rel}\n")
    (root / ".gitignore").write_text("!a.md\nc.md\n")
    (root / ".deskmindignore").write_text("!c.md\n")
    s = Indexer(store, None, ignore=["[ab].md"]).index([root])
    assert _indexed(s, root) == ["a.md", "c.md"]
