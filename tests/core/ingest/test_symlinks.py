"""Symbolic links: a file is one source, under its real path, with its real folder's privacy tag,
however many links lead to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deskmind.core.ingest.indexer import Indexer
from deskmind.core.ingest.privacy import PrivacyRules
from deskmind.core.memory.models import SourceDraft
from deskmind.core.memory.store import MemoryStore
from tests.core.ingest.conftest import chunks_of, source_row


def _uris(store: MemoryStore) -> list[str]:
    return sorted(r[0] for r in store.sql.query("SELECT uri FROM sources WHERE status = 'indexed'"))


@pytest.mark.usefixtures("on_both_backends")
def test_a_file_reached_through_links_is_one_source_with_its_real_folders_tag(
        tmp_path: Path, store: MemoryStore) -> None:
    root = tmp_path.resolve() / "tree"
    (root / "secret").mkdir(parents=True)
    (root / "public").mkdir()
    plan = root / "secret" / "plan.md"
    plan.write_text("# Plan\nThe merger closes on the ninth of June.\n")
    (root / "public" / "hello.md").write_text("# Hello\nA public note.\n")
    (root / "public" / "plan-link.md").symlink_to(plan)          # a link to a file
    (root / "a-alias").symlink_to(root / "secret")                # a folder link walked first
    rules = PrivacyRules.from_settings([{"path": str(root / "secret"), "privacy": "secret"},
                                        {"path": str(root / "public"), "privacy": "public"}])
    s = Indexer(store, None, privacy_for=rules).index([root])
    assert _uris(store) == [str(root / "public" / "hello.md"), str(plan)]
    assert source_row(store, plan)["privacy"] == "secret"
    assert source_row(store, root / "public" / "hello.md")["privacy"] == "public"
    assert s.ignored_reasons == {"same file as another path (a symbolic link)": 1}
    assert s.outcome(root / "a-alias").reason == \
        f"same folder as {root / 'secret'} (a symbolic link): indexed once"
    assert len(chunks_of(store, plan)) == 1

    # Named through a link, the file is still the same source; the re-scan changes nothing.
    again = Indexer(store, None, privacy_for=rules).index([root / "public" / "plan-link.md"])
    assert again.outcome(plan).status == "unchanged"
    assert _uris(store) == [str(root / "public" / "hello.md"), str(plan)]
    # A folder named through a link is indexed under its real path.
    again = Indexer(store, None, privacy_for=rules).index([root / "a-alias"])
    assert [o.status for o in again.outcomes] == ["unchanged"]
    # Forgetting works by either path.
    assert store.resolve(str(root / "public" / "plan-link.md")) == [source_row(store, plan)["id"]]
    assert store.resolve(str(root / "a-alias" / "plan.md")) == [source_row(store, plan)["id"]]


@pytest.mark.usefixtures("on_both_backends")
def test_a_privacy_rule_named_through_a_link_tags_the_real_folder(tmp_path: Path, store: MemoryStore) -> None:
    root = tmp_path.resolve()
    (root / "real").mkdir()
    (root / "real" / "n.md").write_text("# N\nnote\n")
    (root / "shortcut").symlink_to(root / "real")
    rules = PrivacyRules.from_settings([{"path": str(root / "shortcut"), "privacy": "public"}])
    Indexer(store, None, privacy_for=rules).index([root / "shortcut"])
    assert _uris(store) == [str(root / "real" / "n.md")]
    assert source_row(store, root / "real" / "n.md")["privacy"] == "public"


@pytest.mark.usefixtures("on_both_backends")
def test_a_file_outside_the_folder_reached_through_a_link(tmp_path: Path, store: MemoryStore) -> None:
    root = tmp_path.resolve()
    (root / "vaulted").mkdir()
    (root / "notes").mkdir()
    target = root / "vaulted" / "codes.md"
    target.write_text("# Codes\nThe alarm code is kept in the drawer.\n")
    link = root / "notes" / "codes.md"
    link.symlink_to(target)
    (root / "notes" / "todo.md").write_text("# Todo\nbuy milk\n")
    rules = PrivacyRules.from_settings([{"path": str(root / "vaulted"), "privacy": "secret"}],
                                       default="personal")
    idx = Indexer(store, None, privacy_for=rules)
    s = idx.index([root / "notes"])
    assert s.outcome(target).status == "indexed"
    assert source_row(store, target)["privacy"] == "secret" and source_row(store, link) is None
    # Known on the next scan although it lies outside the folder: nothing is read again.
    assert idx.index([root / "notes"]).outcome(target).status == "unchanged"
    # The link goes: so does the source it led to.
    link.unlink()
    s = idx.index([root / "notes"])
    assert s.outcome(target).status == "removed" and source_row(store, target) is None
    # The link comes back, then its target is deleted: removed too, not kept stale.
    link.symlink_to(target)
    idx.index([root / "notes"])
    assert source_row(store, target)["status"] == "indexed"
    target.unlink()
    s = idx.index([root / "notes"])
    assert s.outcome(target).reason == "file no longer exists" and source_row(store, target) is None
    assert _uris(store) == [str(root / "notes" / "todo.md")]
    # Reached both through the link and directly (both folders indexed): it belongs to its own
    # folder, so the link going does not take it away.
    target.write_text("# Codes\nThe alarm code is kept in the drawer.\n")
    s = idx.index([root / "notes", root / "vaulted"])
    assert s.outcome(target).status == "indexed" and "reached_via" not in source_row(store, target)["metadata"]
    link.unlink()
    idx.index([root / "notes"])
    assert source_row(store, target)["status"] == "indexed"


@pytest.mark.usefixtures("on_both_backends")
def test_sources_stored_under_a_link_path_are_let_go(tmp_path: Path, store: MemoryStore) -> None:
    """A memory that holds a file under a path through a link (one file, two sources) keeps
    only the real one after a re-scan."""
    root = tmp_path.resolve()
    (root / "docs").mkdir()
    real = root / "docs" / "a.md"
    real.write_text("# A\nalpha\n")
    (root / "docs" / "b.md").symlink_to(real)
    (root / "linked").symlink_to(root / "docs")
    for uri in (root / "docs" / "b.md", root / "linked" / "a.md"):
        store.put_source(SourceDraft(uri=str(uri), kind="markdown", text="alpha", chunks=[]))
    s = Indexer(store, None).index([root / "docs"])
    assert s.outcome(root / "docs" / "b.md").status == "removed"
    assert _uris(store) == [str(real), str(root / "linked" / "a.md")]
    s = Indexer(store, None).index([root / "linked"])
    assert s.outcome(root / "linked" / "a.md").status == "removed"
    assert _uris(store) == [str(real)]
    assert os.path.islink(root / "docs" / "b.md")  # the person's files are never touched
