"""Re-indexing does embedding work only for text that has no vector yet (counted at the embedder)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from deskmind.core.ingest.indexer import Indexer

from tests.core.memory.helpers import WrappedEmbedder, scalar

SECTION_A = ("The harbour master keeps a ledger of every vessel that enters the port, noting its "
             "name, flag, tonnage and the berth assigned to it. In winter storms the ledger also "
             "records which ships asked for shelter and how long they stayed at anchor inside the "
             "breakwater before sailing on.")
SECTION_B = ("Pilots board the larger ships two miles out and guide them through the narrow channel "
             "between the sandbanks. Their fees depend on draught and on the hour; night pilotage "
             "costs half again as much, and fog can close the channel for a whole day at a time.")


def _tree(root: Path) -> Path:
    root.mkdir()
    (root / "port.md").write_text(f"# Port\n\n## Ledger\n\n{SECTION_A}\n\n## Pilots\n\n{SECTION_B}\n")
    for i in range(4):
        (root / f"note{i}.txt").write_text(f"Short note {i}: buy rope, paint and {i + 2} fenders.\n")
    return root


def test_unchanged_files_cost_no_embedding(core, embedder, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "docs")
    counting = WrappedEmbedder(embedder)
    indexer = Indexer(core.store, lambda: counting)

    first = indexer.index([tree])
    n_chunks = scalar(core.store.reader(), "SELECT count(*) FROM chunks")
    assert first.count("indexed") == 5 and n_chunks >= 6
    assert first.embedded_chunks == counting.texts == n_chunks

    calls = counting.calls
    again = indexer.index([tree])
    assert again.count("unchanged") == 5 and again.count("indexed") == 0
    assert again.embedded_chunks == 0 and counting.calls == calls

    # New mtimes, same bytes: the files are read and hashed, but nothing is embedded.
    later = time.time() + 60
    for p in tree.iterdir():
        os.utime(p, (later, later))
    touched = indexer.index([tree])
    assert touched.count("unchanged") == 5 and touched.embedded_chunks == 0 and counting.calls == calls
    assert core.store.get_source(core.store.resolve(str(tree / "note0.txt"))[0]).mtime == later


def test_only_changed_text_is_embedded(core, embedder, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "docs")
    counting = WrappedEmbedder(embedder)
    indexer = Indexer(core.store, lambda: counting)
    indexer.index([tree])
    port_id = core.store.resolve(str(tree / "port.md"))[0]
    port_chunks = core.store.get_source(port_id).chunk_count
    assert port_chunks >= 2

    # Edit one section of a file: its other chunks keep their vectors.
    texts = counting.texts
    (tree / "port.md").write_text(
        f"# Port\n\n## Ledger\n\n{SECTION_A}\n\n## Pilots\n\n{SECTION_B.replace('two miles', 'three miles')}\n")
    edited = indexer.index([tree])
    assert edited.count("indexed") == 1
    assert 1 <= edited.embedded_chunks == counting.texts - texts < port_chunks

    # A copy of a file under a new name: new source, vectors reused by text hash.
    shutil.copy(tree / "note1.txt", tree / "note1-copy.txt")
    texts = counting.texts
    copied = indexer.index([tree])
    assert copied.count("indexed") == 1 and copied.embedded_chunks == 0 and counting.texts == texts
    idx = core.store.active_index()
    conn = core.store.reader()
    assert scalar(conn, f"SELECT count(*) FROM {idx.float_table}") == scalar(conn, "SELECT count(*) FROM chunks")
