"""The pipeline: incremental re-index, atomic replace, deletions, ignore rules, privacy rules,
vault collections, progress events."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from deskmind.core.ingest.indexer import Indexer
from deskmind.core.ingest.privacy import PrivacyRules
from deskmind.core.memory.store import MemoryStore
from tests.core.ingest.conftest import chunks_of, source_row


def _tree(root: Path) -> None:
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "a.md").write_text("# Alpha\nAardvarks dig burrows at dusk.\n")
    (root / "notes" / "b.txt").write_text("Badgers are nocturnal and bad tempered.\n")
    (root / "code").mkdir()
    (root / "code" / "c.py").write_text("def capybara():\n    return 'largest rodent'\n")


@pytest.mark.usefixtures("on_both_backends")
def test_incremental_reindex_does_no_work_for_unchanged_files(tmp_path: Path, core) -> None:
    _tree(tmp_path)
    idx = core.indexer()
    first = idx.index([tmp_path])
    assert first.count("indexed") == 3 and first.embedded_chunks == 3
    again = idx.index([tmp_path])
    assert again.count("unchanged") == 3 and again.embedded_chunks == 0
    assert again.timings["parse_cpu"] == 0.0  # nothing was even opened
    # Same content, new mtime: read and hashed, but neither parsed nor embedded.
    os.utime(tmp_path / "notes" / "a.md", (time.time() + 10, time.time() + 10))
    touched = idx.index([tmp_path])
    assert touched.count("unchanged") == 3 and touched.embedded_chunks == 0
    assert idx.index([tmp_path]).timings["parse_cpu"] == 0.0  # the new mtime was recorded


@pytest.mark.usefixtures("on_both_backends")
def test_changed_file_replaces_its_chunks_and_deleted_file_is_forgotten(tmp_path: Path, core) -> None:
    _tree(tmp_path)
    (tmp_path / "notes" / "a.md").write_text("# Alpha\nAardvarks dig burrows at dusk.\nSee [b](b.txt)\n")
    idx = core.indexer()
    idx.index([tmp_path])
    store = core.store
    a = tmp_path / "notes" / "a.md"
    old_ids = [r[0] for r in store.sql.query(
        "SELECT c.id FROM chunks c JOIN sources s ON s.id = c.source_id WHERE s.uri = ?", (str(a),))]
    a.write_text("# Alpha\nArmadillos roll into balls.\n")
    s = idx.index([tmp_path])
    assert s.outcome(a).status == "indexed" and s.embedded_chunks == 1
    assert "Armadillos" in chunks_of(store, a)[0][0] and len(chunks_of(store, a)) == 1
    assert not store.sql.query_one(
        f"SELECT count(*) FROM chunks WHERE id IN ({','.join(map(str, old_ids))})")[0]
    hits = core.searcher().search("aardvarks burrows", limit=5, mode="fts").hits
    assert not hits
    # Deletion: noticed on re-scan and forgotten with the same cascade as `deskmind forget`.
    b = tmp_path / "notes" / "b.txt"
    sid = source_row(store, b)["id"]
    b.unlink()
    s = idx.index([tmp_path])
    assert s.outcome(b).status == "removed"
    assert source_row(store, b) is None
    assert store.sql.query_one("SELECT count(*) FROM chunks WHERE source_id = ?", (sid,))[0] == 0
    active = store.active_index()
    assert store.sql.query_one(f"SELECT count(*) FROM {active.float_table}")[0] == \
        store.sql.query_one("SELECT count(*) FROM chunks")[0]
    assert not core.searcher().search("badgers nocturnal", limit=5).hits or all(
        h.source != str(b) for h in core.searcher().search("badgers nocturnal", limit=5).hits)
    assert store.integrity_check() == []


def test_ignore_rules_defaults_gitignore_and_settings(tmp_path: Path, store: MemoryStore) -> None:
    files = {
        "keep.md": "# keep", "app.log": "log line", "build/out.txt": "built", "sub/tmp/x.txt": "tmp",
        "sub/ok.txt": "fine", ".git/config": "[core]", "node_modules/m/index.js": "x=1",
        ".env": "API_KEY=1", "server.pem": "-----BEGIN", "id_rsa": "-----BEGIN", "deploy.key": "k",
        "photo.jpg": "\xff\xd8", "drafts/wip.md": "# wip", ".venv/lib.py": "x=1",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / ".gitignore").write_text("*.log\nbuild/\n")
    (tmp_path / "sub" / ".deskmindignore").write_text("tmp/\n")
    idx = Indexer(store, None, ignore=["drafts/"])
    s = idx.index([tmp_path])
    indexed = sorted(Path(o.path).relative_to(tmp_path).as_posix() for o in s.outcomes if o.status == "indexed")
    assert indexed == ["keep.md", "sub/ok.txt"]
    assert s.ignored_reasons["secret (credentials or key file)"] == 2  # .env, id_rsa
    assert s.ignored_reasons["secret (key or certificate file)"] == 2  # .pem, .key
    # A file named explicitly is read, unless it is a secret.
    s = idx.index([tmp_path / "app.log", tmp_path / ".env"])
    assert s.outcome(tmp_path / "app.log").status == "indexed"
    assert s.outcome(tmp_path / ".env").reason == "ignored: secret (credentials or key file)"
    # A file that becomes ignored leaves memory on the next scan.
    (tmp_path / ".gitignore").write_text("*.log\nbuild/\nkeep.md\n")
    s = idx.index([tmp_path])
    assert s.outcome(tmp_path / "keep.md").status == "removed"


def test_privacy_inherited_from_folder_rules(tmp_path: Path, store: MemoryStore) -> None:
    for rel in ("public/a.md", "public/drafts/b.md", "home/c.md", "d.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"# {rel}\ntext")
    rules = PrivacyRules.from_settings([
        {"path": str(tmp_path / "public"), "privacy": "public"},
        {"path": str(tmp_path / "public" / "drafts"), "privacy": "personal"},
        {"path": str(tmp_path / "home"), "privacy": "secret"},
    ], default="private")
    Indexer(store, None, privacy_for=rules).index([tmp_path])
    got = {rel: source_row(store, tmp_path / rel)["privacy"] for rel in
           ("public/a.md", "public/drafts/b.md", "home/c.md", "d.md")}
    assert got == {"public/a.md": "public", "public/drafts/b.md": "personal",
                   "home/c.md": "secret", "d.md": "private"}
    # A rule changed: unchanged files take the new tag without being re-read.
    looser = PrivacyRules.from_settings([{"path": str(tmp_path / "home"), "privacy": "personal"}])
    s = Indexer(store, None, privacy_for=looser).index([tmp_path])
    assert s.count("unchanged") == 4
    assert source_row(store, tmp_path / "home/c.md")["privacy"] == "personal"
    assert source_row(store, tmp_path / "public/a.md")["privacy"] == "private"


def test_privacy_rules_are_validated() -> None:
    from deskmind.core.errors import UserInputError

    with pytest.raises(UserInputError, match="privacy = 'topsecret' is not one of"):
        PrivacyRules.from_settings([{"path": "/x", "privacy": "topsecret"}])
    with pytest.raises(UserInputError, match="needs path"):
        PrivacyRules.from_settings([{"privacy": "public"}])


def test_settings_toml_privacy_rules_reach_the_indexer(tmp_path: Path, deskmind_home: Path) -> None:
    from deskmind.core.app import Core

    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "n.md").write_text("# n\nhello")
    from deskmind.core.config.paths import Paths

    settings = Paths.from_env().settings_path
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(f'[ingest]\nmax_file_mb = 1\n\n[[ingest.privacy_rules]]\npath = "{tmp_path / "pub"}"\n'
                        'privacy = "public"\n')
    with Core() as core:
        idx = core.indexer()
        assert idx.max_file_bytes == 1024 * 1024
        assert idx.privacy_for(tmp_path / "pub" / "n.md") == "public"
        assert idx.privacy_for(tmp_path / "other.md") == "private"


@pytest.mark.usefixtures("on_both_backends")
def test_obsidian_vault_is_one_collection_with_wikilinks(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    from deskmind.core.ingest.links import backlinks, collections, outgoing

    vault = tmp_path / "Brain"
    (vault / ".obsidian").mkdir(parents=True)
    (vault / ".obsidian" / "app.json").write_text("{}")
    (vault / "daily").mkdir()
    (vault / "daily" / "2024-03-01.md").write_text("# Monday\nMet [[Project X]] people. [[Nowhere]]\n")
    (tmp_path / "outside.md").write_text("# Outside\n")
    indexer.index([tmp_path])
    assert collections(store) == [{"name": "Brain", "kind": "obsidian", "root": str(vault), "sources": 1}]
    day = source_row(store, vault / "daily" / "2024-03-01.md")
    assert day["collection"] == "Brain" and source_row(store, tmp_path / "outside.md")["collection"] is None
    assert source_row(store, vault / ".obsidian" / "app.json") is None
    # The target note appears later: the waiting wikilink resolves to it.
    (vault / "Project X.md").write_text("# Project X\nplans")
    indexer.index([vault / "Project X.md"])  # a single file still finds its vault
    px = source_row(store, vault / "Project X.md")
    assert px["collection"] == "Brain"
    edges = {e.target: e.target_id for e in outgoing(store, day["id"])}
    assert edges == {"Project X": px["id"], "Nowhere": None}
    assert [e.source_id for e in backlinks(store, px["id"])] == [day["id"]]
    # Forgetting the linking note takes its edges with it.
    store.forget_ids([day["id"]])
    assert backlinks(store, px["id"]) == []


def test_progress_events(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    _tree(tmp_path)
    events = []
    indexer.index([tmp_path], on_event=events.append)
    assert events[0].kind == "scan" and events[0].files_total == 3
    files = [e for e in events if e.kind == "file"]
    assert [e.files_done for e in files] == [1, 2, 3]
    assert files[-1].bytes == files[-1].bytes_total > 0 and files[-1].chunks == 3
    assert all(e.eta_s is not None for e in files)
    assert events[-1].kind == "done"


def test_cancel_stops_between_files(tmp_path: Path, store: MemoryStore, indexer: Indexer) -> None:
    import threading

    for n in range(40):
        (tmp_path / f"f{n:02}.txt").write_text(f"file number {n}")
    cancel = threading.Event()

    def on_event(ev) -> None:
        if ev.kind == "file" and ev.files_done == 5:
            cancel.set()

    s = indexer.index([tmp_path], on_event=on_event, cancel=cancel)
    assert s.cancelled and s.count("indexed") < 40
    assert indexer.index([tmp_path]).count("indexed") == 40 - s.count("indexed")
