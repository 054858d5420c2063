"""Vector indexes and the in-memory copy search uses: bit layout, deletions, swaps, refreshes."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from deskmind.core.memory import db, vector_cache, vectors
from deskmind.core.memory.reembed import reembed
from deskmind.core.memory.store import MemoryStore, text_hash
from deskmind.core.memory.vector_cache import BitCache, FloatCache, Vec0Storage
from tests.core.memory.helpers import WrappedEmbedder, note

DIM = 384


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    m = rng.standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


@pytest.fixture
def store(tmp_path: Path):
    s = MemoryStore(tmp_path / "memory.db")
    yield s
    s.close()


class Corpus:
    """Notes with known vectors in a real store; remembers every live chunk's vector."""

    def __init__(self, store: MemoryStore, seed: int = 7) -> None:
        self.store = store
        self.rng = np.random.default_rng(seed)
        self.idx = store.ensure_active_index("test-model", DIM)
        self.vec: dict[int, np.ndarray] = {}  # chunk id -> vector
        self.n = 0

    def add(self, chunks: int) -> tuple[int, list[int]]:
        texts = [f"chunk {self.n + i}" for i in range(chunks)]
        self.n += chunks
        mat = unit(self.rng, chunks)
        sid = self.store.put_source(note(texts), self.idx, {text_hash(t): v for t, v in zip(texts, mat)})
        ids = [r[0] for r in self.store.reader().execute(
            "SELECT id FROM chunks WHERE source_id = ? ORDER BY ord", (sid,))]
        self.vec.update(zip(ids, mat))
        return sid, ids

    def forget(self, sid: int, ids: list[int]) -> None:
        self.store.forget_ids([sid])
        for cid in ids:
            del self.vec[cid]

    def exact(self, q: np.ndarray, k: int) -> list[int]:
        ids = list(self.vec)
        scores = np.stack([self.vec[i] for i in ids]) @ q
        return [ids[i] for i in np.argsort(-scores, kind="stable")[:k]]


# -- bit layout -------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [8, 384, 1024])
def test_pack_bits_matches_sqlite_vec_quantize_binary(dim: int) -> None:
    conn = db.connect(":memory:")
    rng = np.random.default_rng(dim)
    for _ in range(50):
        v = rng.standard_normal(dim).astype("<f4")
        v[rng.integers(0, dim, 3)] = 0.0  # zero counts as "not positive" in both
        v[rng.integers(0, dim, 1)] = -0.0
        sqlite_bits = conn.execute("SELECT vec_quantize_binary(?)", (v.tobytes(),)).fetchone()[0]
        assert vectors.pack_bits(v).tobytes() == sqlite_bits
    conn.close()


def test_vec0_storage_reads_the_same_bits_as_the_vec0_table(store: MemoryStore) -> None:
    c = Corpus(store)
    sources = [c.add(300) for _ in range(5)]  # 1500 vectors: two vec0 blocks
    c.forget(*sources[1])  # holes in the first (full) block
    c.forget(*sources[4])  # holes in the newest block, which vec0 fills again
    c.add(120)
    conn = store.reader()
    storage = Vec0Storage(conn, c.idx.bits_table, DIM // 8)
    got: dict[int, bytes] = {}
    for _cid, _validity, ids, bits in storage.blocks(conn, [r[0] for r in storage.validity(conn)]):
        for i, b in zip(ids, bits):
            if i:
                assert int(i) not in got
                got[int(i)] = b.tobytes()
    public = dict(conn.execute(f"SELECT rowid, embedding FROM {c.idx.bits_table}").fetchall())
    assert got == public
    assert set(got) == set(c.vec)
    assert storage.count(conn) == len(c.vec)
    for cid, v in c.vec.items():
        assert got[cid] == vectors.pack_bits(v).tobytes()


def test_hamming_distance_matches_a_plain_popcount(store: MemoryStore) -> None:
    c = Corpus(store)
    c.add(700)
    conn = store.reader()
    cache = BitCache(c.idx, Vec0Storage(conn, c.idx.bits_table, DIM // 8))
    cache.refresh(conn)
    q = unit(c.rng, 1)[0]
    dist = cache.hamming(vectors.pack_bits(q))
    qb = q > 0
    assert cache.live == 700
    for slot, cid in enumerate(cache.ids):
        if cid == 0:  # an empty slot of vec0's block: never a candidate
            assert dist[slot] == np.iinfo(np.uint16).max
        else:
            assert dist[slot] == np.count_nonzero((c.vec[int(cid)] > 0) != qb)


# -- search through the in-memory copy ----------------------------------------------------


@pytest.mark.parametrize("exact_limit", [10_000, 100], ids=["float-copy", "bit-copy"])
def test_deleted_chunks_are_never_returned_and_new_ones_are(store: MemoryStore, exact_limit: int) -> None:
    c = Corpus(store)
    sources = [c.add(60) for _ in range(20)]
    searcher = vectors.VectorSearcher(exact_limit=exact_limit, candidates=2000)
    conn = store.reader()
    q = c.vec[sources[3][1][5]]
    assert searcher.search(conn, c.idx, q, 5)[0] == (sources[3][1][5], pytest.approx(1.0, abs=1e-5))
    kind = searcher.cache_info()["kind"]
    assert kind == ("float" if exact_limit > 1200 else "bits")

    c.forget(*sources[3])
    hits = searcher.search(conn, c.idx, q, 5000)
    assert {h for h, _ in hits} == set(c.vec)  # every live chunk, and nothing else
    assert [h for h, _ in hits[:10]] == c.exact(q, 10)

    _, new_ids = c.add(30)
    q2 = c.vec[new_ids[7]]
    assert searcher.search(conn, c.idx, q2, 1)[0][0] == new_ids[7]
    assert searcher.cache_info()["vectors"] == len(c.vec) == 20 * 60 - 60 + 30
    assert searcher.cache_info()["kind"] == kind


def test_slot_reused_by_vec0_between_two_searches_is_seen(store: MemoryStore) -> None:
    """vec0 refills deleted slots of its newest block; the copy must notice the new chunk."""
    c = Corpus(store)
    c.add(1024)  # exactly one full block
    sid, ids = c.add(10)  # the newest block
    searcher = vectors.VectorSearcher(exact_limit=100, candidates=50)
    conn = store.reader()
    searcher.search(conn, c.idx, c.vec[ids[0]], 1)
    c.forget(sid, ids)
    _, new_ids = c.add(10)  # lands in the very slots just freed
    for cid in new_ids:
        assert searcher.search(conn, c.idx, c.vec[cid], 1)[0][0] == cid
    hits = searcher.search(conn, c.idx, c.vec[new_ids[0]], 2000)
    assert {h for h, _ in hits} == set(c.vec)


def test_copy_grows_from_floats_to_bits_and_stays_correct(store: MemoryStore) -> None:
    c = Corpus(store)
    c.add(100)
    searcher = vectors.VectorSearcher(exact_limit=200, candidates=400)
    conn = store.reader()
    searcher.search(conn, c.idx, unit(c.rng, 1)[0], 5)
    assert searcher.cache_info()["kind"] == "float"
    for _ in range(3):
        c.add(100)
    q = unit(c.rng, 1)[0]
    hits = searcher.search(conn, c.idx, q, 10)
    assert searcher.cache_info() == {"kind": "bits", "index_id": c.idx.id, "vectors": 400,
                                     "bytes": searcher.cache_info()["bytes"]}
    assert [h for h, _ in hits] == c.exact(q, 10)  # all 400 are candidates


def test_other_connections_see_writes_made_after_their_last_search(store: MemoryStore) -> None:
    c = Corpus(store)
    c.add(50)
    searcher = vectors.VectorSearcher(exact_limit=100, candidates=400)
    conn_a = store.reader()
    conn_b = db.connect(store.path)
    try:
        searcher.search(conn_a, c.idx, unit(c.rng, 1)[0], 3)
        searcher.search(conn_b, c.idx, unit(c.rng, 1)[0], 3)
        _, ids = c.add(200)  # now past exact_limit * 1.5: the copy becomes bits
        assert searcher.search(conn_b, c.idx, c.vec[ids[-1]], 1)[0][0] == ids[-1]
        _, ids2 = c.add(5)
        # conn_a last looked before both writes; conn_b refreshed after the first one only.
        assert searcher.search(conn_a, c.idx, c.vec[ids2[0]], 1)[0][0] == ids2[0]
        assert searcher.search(conn_b, c.idx, c.vec[ids2[1]], 1)[0][0] == ids2[1]
    finally:
        conn_b.close()


def test_slow_public_read_gives_the_same_copy(store: MemoryStore) -> None:
    c = Corpus(store)
    sources = [c.add(400) for _ in range(4)]
    c.forget(*sources[1])
    conn = store.reader()
    fast = BitCache(c.idx, Vec0Storage(conn, c.idx.bits_table, DIM // 8))
    slow = BitCache(c.idx, None)
    fast.refresh(conn)
    slow.refresh(conn)
    assert fast.live == slow.live == len(c.vec)
    q = vectors.pack_bits(unit(c.rng, 1)[0])
    f = dict(zip(fast.ids.tolist(), fast.hamming(q).tolist()))
    s = dict(zip(slow.ids.tolist(), slow.hamming(q).tolist()))
    f.pop(0, None)
    assert f == s


def test_float_copy_drops_deleted_chunks(store: MemoryStore) -> None:
    c = Corpus(store)
    sources = [c.add(10) for _ in range(5)]
    conn = store.reader()
    cache = FloatCache(c.idx)
    cache.refresh(conn, live=50)
    c.forget(*sources[2])
    cache.refresh(conn, live=40)
    assert sorted(cache.ids.tolist()) == sorted(c.vec)
    for cid, row in zip(cache.ids, cache.floats):
        np.testing.assert_array_equal(row, c.vec[int(cid)])


def test_float_copy_is_read_block_by_block_and_matches(store: MemoryStore, monkeypatch) -> None:
    monkeypatch.setattr(vector_cache, "READ_BLOCK", 16)
    c = Corpus(store)
    for _ in range(5):
        c.add(23)  # blocks of 16 rows that do not fall on sources' edges
    conn = store.reader()
    cache = FloatCache(c.idx)
    cache.refresh(conn, live=115)
    assert cache.n == 115 and len(cache._floats) == 115  # a first load is sized exactly
    c.add(7)
    cache.refresh(conn, live=122)
    assert cache.ids.tolist() == sorted(c.vec)
    for cid, row in zip(cache.ids, cache.floats):
        np.testing.assert_array_equal(row, c.vec[int(cid)])


def test_first_load_of_the_float_copy_needs_one_block_more_than_the_copy(store: MemoryStore) -> None:
    """Reading every row before copying them held the rows and a joined copy of them besides
    the matrix (about three times its size); the heap keeps such a peak for good."""
    c = Corpus(store)
    for _ in range(4):
        c.add(500)
    conn = store.reader()
    cache = FloatCache(c.idx)
    conn.execute("SELECT count(*) FROM chunks").fetchone()
    tracemalloc.start()
    try:
        cache.refresh(conn, live=2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cache.n == 2000
    size = cache.nbytes()
    # Beyond the copy itself: one block of rows read and joined, whatever the corpus size.
    block = vector_cache.READ_BLOCK * DIM * 4
    assert peak - size < 3 * block, f"peak {peak} bytes for a copy of {size}"


def test_reembed_swaps_the_copy_to_the_new_index(store: MemoryStore, embedder) -> None:
    first = WrappedEmbedder(embedder, model_id="first-model")
    idx = store.ensure_active_index(first.model_id, first.dim)
    texts = ["the cat sat on the mat", "quarterly tax return deadline", "how to bake sourdough bread"]
    vecs = first.embed(texts)
    store.put_source(note(texts), idx, {text_hash(t): v for t, v in zip(texts, vecs)})
    searcher = store.vector_searcher
    conn = store.reader()
    assert searcher.search(conn, idx, first.embed_query("baking bread"), 1)
    assert searcher.cache_info()["index_id"] == idx.id

    second = WrappedEmbedder(embedder, model_id="second-model")
    result = reembed(store, second)
    new = vectors.active_index(conn)
    assert result is not None and new is not None and new.id == result.index_id != idx.id
    hits = searcher.search(conn, new, second.embed_query("baking bread"), 3)
    assert searcher.cache_info()["index_id"] == new.id
    chunk_text = dict(conn.execute("SELECT id, text FROM chunks").fetchall())
    assert chunk_text[hits[0][0]] == "how to bake sourdough bread"
    assert {h for h, _ in hits} == set(chunk_text)
    # The old index's tables are gone with it.
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = ?",
                        (idx.float_table,)).fetchone()[0] == 0


def test_concurrent_searches_and_writes_agree_with_the_database(store: MemoryStore) -> None:
    c = Corpus(store)
    c.add(300)
    searcher = vectors.VectorSearcher(exact_limit=100, candidates=4000)
    errors: list[BaseException] = []
    stop = threading.Event()

    def search_loop() -> None:
        conn = store.reader()
        rng = np.random.default_rng(threading.get_ident() % 1000)
        try:
            while not stop.is_set():
                q = unit(rng, 1)[0]
                hits = searcher.search(conn, c.idx, q, 50)
                assert len(hits) == 50
                assert len({h for h, _ in hits}) == 50
                scores = [s for _, s in hits]
                assert scores == sorted(scores, reverse=True)
                # Scores are the true cosine of what the database holds for each chunk.
                ids, mat = vectors.fetch_floats(conn, c.idx, [h for h, _ in hits])
                stored = dict(zip(ids, mat @ q))
                for h, s in hits:
                    if h in stored:  # unless it was forgotten since
                        assert s == pytest.approx(float(stored[h]), abs=1e-5)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=search_loop) for _ in range(2)]
    for t in threads:
        t.start()
    made = [c.add(40) for _ in range(10)]
    for sid, ids in made[::2]:
        c.forget(sid, ids)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    q = unit(c.rng, 1)[0]
    hits = searcher.search(store.reader(), c.idx, q, 10_000)
    assert {h for h, _ in hits} == set(c.vec)


def test_warm_loads_the_copy_before_the_first_search(store: MemoryStore) -> None:
    c = Corpus(store)
    c.add(50)
    searcher = vectors.VectorSearcher(exact_limit=100)
    assert searcher.cache_info()["vectors"] == 0
    searcher.warm(store.reader(), c.idx)
    assert searcher.cache_info()["vectors"] == 50


def test_asymmetric_rescore_matches_a_plain_computation(store: MemoryStore) -> None:
    c = Corpus(store)
    c.add(900)
    conn = store.reader()
    cache = BitCache(c.idx, Vec0Storage(conn, c.idx.bits_table, DIM // 8))
    cache.refresh(conn)
    live = np.flatnonzero(cache.ids != 0)
    for row, slot in zip(cache.rows(live[:50]), live[:50]):
        assert row.tobytes() == vectors.pack_bits(c.vec[int(cache.ids[slot])]).tobytes()
    q = unit(c.rng, 1)[0]
    got = set(cache.ids[cache.rescore(q, live, 40)].tolist())
    signs = {cid: np.where(v > 0, 1.0, -1.0) @ q for cid, v in c.vec.items()}
    best = sorted(signs, key=lambda cid: -signs[cid])[:40]
    assert got == set(best)
