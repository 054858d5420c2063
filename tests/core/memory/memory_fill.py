"""A memory with something in every table, and a comparison of two memories row by row
(for the copy and backup tests)."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from deskmind.core.memory import copy as memcopy
from deskmind.core.memory.models import NewChunk, SourceDraft
from deskmind.core.memory.store import text_hash

TOPICS = [
    "The sourdough starter needs feeding with rye flour every morning before work",
    "Quarterly budget review moved to Thursday; bring the spreadsheet of travel costs",
    "Kayak trip on the river Dordogne: book the campsite near Beynac in July",
    "The heat pump makes a rattling noise when the outside temperature drops below zero",
    "Grandmother's recipe for plum dumplings uses quark and breadcrumbs fried in butter",
    "Migrating the invoice service to PostgreSQL needs the pgvector extension installed",
    "Piano practice: Chopin nocturne in E flat, slow left hand arpeggios first",
    "The dentist appointment is on the 14th at 9:30, bring the insurance card",
    "Tomato seedlings go into the greenhouse once the nights stay above ten degrees",
    "Reading notes on Thucydides: the Melian dialogue and the logic of power",
    "Bicycle chain skips on the smallest cog; replace the cassette and the chain together",
    "Idea for the garden shed: solar panel on the roof feeding a small battery for lights",
]


def fake_vectors(texts: Sequence[str], dim: int) -> np.ndarray:
    """Unit vectors that depend only on the text (the same text, the same vector)."""
    out = []
    for t in texts:
        rng = np.random.default_rng(int(text_hash(t)[:12], 16))
        v = rng.normal(size=dim).astype(np.float32)
        out.append(v / np.linalg.norm(v))
    return np.stack(out)


def fill(store: Any, *, embed: Callable[[Sequence[str]], np.ndarray] | None = None,
         model_id: str = "test-model", dim: int = 16, extra_notes: int = 0) -> dict[str, Any]:
    """Put something in every table of ``store``: sources with text, metadata, chunks and
    vectors, a child whose parent has a larger id, a conversation derived from two sources,
    links, a collection, a forgotten source (so ids have gaps), a second vector index being
    built, the egress ledger, both audit logs and gateway clients."""
    embed = embed or (lambda texts: fake_vectors(texts, dim))
    idx = store.ensure_active_index(model_id, dim)

    def put(draft: SourceDraft) -> int:
        vecs = embed([c.text for c in draft.chunks]) if draft.chunks else []
        return store.put_source(draft, idx, {text_hash(c.text): v for c, v in zip(draft.chunks, vecs)})

    ids = []
    topics = TOPICS + [f"Extra note {i}: {TOPICS[i % len(TOPICS)]} (variation {i})"
                       for i in range(extra_notes)]
    for i, topic in enumerate(topics):
        ids.append(put(SourceDraft(
            uri=f"/home/ann/notes/note-{i}.md", kind="file", title=f"Note {i}",
            content_hash=text_hash(topic), size=len(topic), mtime=1_700_000_000.0 + i,
            privacy=("private", "personal", "public")[i % 3],
            collection="vault" if i % 4 == 0 else None, metadata={"n": i, "tags": ["a", "b"]},
            text=topic + "\n\nSecond paragraph of " + topic.lower(), extractor="markdown",
            chunks=[NewChunk(topic, {"line": 1}),
                    NewChunk("Second paragraph of " + topic.lower(), {"line": 3})])))
    # A parent with a larger id than its child: store the child first, then point it at the
    # parent stored after it (the copy must set parent_id once both exist).
    child = put(SourceDraft(uri="deskmind://minutes/1", kind="minutes", title="Minutes",
                            text="Decisions: ship on Friday", extractor="test",
                            chunks=[NewChunk("Decisions: ship on Friday")]))
    parent = put(SourceDraft(uri="deskmind://meeting/1", kind="meeting", title="Meeting",
                             text="We talked about shipping on Friday", extractor="test",
                             chunks=[NewChunk("We talked about shipping on Friday")]))
    put(SourceDraft(uri="deskmind://minutes/1", kind="minutes", title="Minutes",
                    parent_id=parent, text="Decisions: ship on Friday", extractor="test",
                    chunks=[NewChunk("Decisions: ship on Friday")], replaces=child))
    conv = put(SourceDraft(uri="deskmind://conversation/1", kind="conversation",
                           title="What about the kayak trip?",
                           text="Q: kayak?\nA: book the campsite near Beynac", extractor="chat",
                           chunks=[NewChunk("Q: kayak?\nA: book the campsite near Beynac")],
                           derived_from=[ids[2], ids[7]]))
    store.links.ensure_collection("/home/ann/notes", "vault", "obsidian")
    store.links.replace(ids[0], [("wikilink", "note-4", "recipe"), ("link", "/home/ann/notes/note-8.md", None),
                                 ("embed", "photo.png", None)])
    store.links.replace(ids[4], [("wikilink", "note-0", "starter")])
    gone = put(SourceDraft(uri="deskmind://note/forgotten", kind="note", title="Forget me",
                           text="a passing thought", extractor="test",
                           chunks=[NewChunk("a passing thought")]))
    store.forget(gone)
    # A second index for another model, half built.
    from deskmind.core.memory import vectors as sqlite_vectors
    if store.backend == "sqlite":
        other = store.sql.write(lambda tx: sqlite_vectors.create_index(tx, "other-model", 8, "building"))
        chunk_ids = [r[0] for r in store.sql.query("SELECT id FROM chunks ORDER BY id LIMIT 9")]
        texts = [r[0] for r in store.sql.query("SELECT text FROM chunks ORDER BY id LIMIT 9")]
        store.sql.write(lambda tx: sqlite_vectors.insert_vectors(tx, other, chunk_ids,
                                                                 fake_vectors(texts, 8)))
    now = time.time()
    entry = store.egress.add((now, "openai", "api.openai.com", "cloud", "gpt-x", "rule-1", 1200,
                              "ab" * 32, f"[{ids[1]}, {ids[2]}]"))
    store.egress.finish(entry, bytes_in=800, status="sent")
    store.egress.add((now + 1, "anthropic", "api.anthropic.com", "cloud", "", "", 90, "cd" * 32, "[]"))
    store.agent_audit.add((now, "researcher", "memory.search", "q=kayak", "allowed", "", 321))
    store.agent_audit.add((now + 2, "researcher", "shell", "rm -rf /", "denied", "not allowed", 0))
    store.clients.grant("claude-desktop", '{"memory": "read"}', now)
    store.clients.set_token("claude-desktop", "ef" * 32, now)
    store.clients.add_pending("curious-tool", now)
    store.gateway_audit.submit((now, "claude-desktop", "mcp", "search", "kayak", "allowed", None,
                                2048, f"[{ids[2]}]")).result(timeout=30)
    store.gateway_audit.submit((now + 1, "curious-tool", "openai", "chat", "", "denied",
                                "not granted", 0, "[]")).result(timeout=30)
    return {"ids": ids, "parent": parent, "child": child, "conversation": conv, "forgotten": gone}


def table_rows(store: Any, table: str, cols: Sequence[str]) -> list[tuple]:
    rows = [tuple(r) for r in store.sql.query(f"SELECT {', '.join(cols)} FROM {table}")]
    return sorted(rows, key=lambda r: tuple((x is None, str(type(x)), x if x is not None else 0)
                                            for x in r))


def common_columns(a: Any, b: Any, table: str) -> list[str]:
    ca, cb = memcopy.bulk_for(a).columns(table), set(memcopy.bulk_for(b).columns(table))
    return [c for c in ca if c in cb]


def assert_same_memory(a: Any, b: Any) -> dict[str, int]:
    """Every row of every table and every vector of every index equal; returns row counts."""
    counts = {}
    for spec in memcopy.TABLES:
        cols = common_columns(a, b, spec.name)
        ra, rb = table_rows(a, spec.name, cols), table_rows(b, spec.name, cols)
        assert ra == rb, f"{spec.name} differs"
        counts[spec.name] = len(ra)
    ba, bb = memcopy.bulk_for(a), memcopy.bulk_for(b)
    indexes = _indexes(a)
    assert indexes == _indexes(b)
    for idx in indexes:
        ia, ma = ba.read_vectors(idx, 0, 1_000_000)
        ib, mb = bb.read_vectors(idx, 0, 1_000_000)
        assert ia == ib, f"vector index {idx.id}: other chunk ids"
        assert np.array_equal(ma, mb), f"vector index {idx.id}: other vectors"
        counts[idx.float_table] = len(ia)
    return counts


def _indexes(store: Any) -> list:
    from deskmind.core.memory.copy import _index

    return [_index(dict(zip(("id", "model_id", "dim", "status", "watermark"), r)))
            for r in store.sql.query(
                "SELECT id, model_id, dim, status, watermark FROM vector_indexes ORDER BY id")]
