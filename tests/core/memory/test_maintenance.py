"""Looking after the memory, the same on both backends: stats, integrity, optimize."""

from __future__ import annotations

from deskmind.core.memory.backend import open_memory
from deskmind.core.memory.store import text_hash

from tests.core.memory.helpers import count, note


def test_optimize_after_forgetting_keeps_what_remains_searchable(memory_backend: str, embedder) -> None:
    with open_memory(memory_backend) as store:
        idx = store.ensure_active_index(embedder.model_id, embedder.dim)
        texts = [f"the {w} report for the spring quarter" for w in ("budget", "garden", "travel")]
        texts += [f"filler passage {i} of no interest" for i in range(20)]
        vecs = dict(zip(map(text_hash, texts), embedder.embed(texts)))
        ids = [store.put_source(note(t), idx, vecs) for t in texts]
        store.forget_ids(ids[3:])
        done = store.optimize(reindex=True)
        assert done["backend"] == store.backend == store.stats()["backend"]
        assert done["vacuumed"] and done["reindexed"] and done["failed"] == []
        assert done["bytes_after"] > 0
        assert store.integrity_check() == []
        assert count(store, "SELECT count(*) FROM chunks") == 3
        hits = store.searcher(lambda _m: embedder).search("money plan for the garden", limit=3).hits
        assert {h.source_id for h in hits} <= set(ids[:3]) and ids[1] in {h.source_id for h in hits}
