"""Looking after a PostgreSQL memory on a real server: stats, integrity, optimize."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import numpy as np
import psycopg
import pytest

from deskmind.core.memory.pg.store import PgMemoryStore
from deskmind.core.memory.store import text_hash

from tests.core.memory.helpers import count, note


@pytest.fixture
def store(pg_url: str):
    s = PgMemoryStore(pg_url)
    yield s
    s.close()


def unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def fill(store: PgMemoryStore, n: int = 30) -> tuple:
    idx = store.ensure_active_index("m", 8)
    ids = []
    for i in range(n):
        text = f"passage number {i} about topic {i % 7}"
        ids.append(store.put_source(note([text], uri=f"deskmind://note/{i}"), idx,
                                    {text_hash(text): unit(i)}))
    return idx, ids


def superuser(pg_url: str) -> psycopg.Connection:
    # The test server's user is a superuser: it may plant what a bad restore leaves behind.
    return psycopg.connect(pg_url, autocommit=True)


def test_stats_describe_the_server_database_sizes_and_versions(store: PgMemoryStore) -> None:
    idx, _ids = fill(store, 5)
    st = store.stats()
    assert st["backend"] == "postgres"
    assert (st["sources"], st["chunks"], st["vector_index"]["vectors"]) == (5, 5, 5)
    parts = urlsplit(store.url)
    assert st["database"] == parts.path.lstrip("/")
    # The test server listens on a Unix socket folder given as ?host=.
    host = dict(parse_qsl(parts.query)).get("host") or parts.hostname
    assert st["server"] == f"{host}:{parts.port or 5432}"
    assert st["user"] == "postgres"
    assert st["server_version"].split(".")[0].isdigit()
    assert tuple(int(p) for p in st["pgvector"].split(".")[:2]) >= (0, 8)
    tables = st["table_bytes"]
    assert {"sources", "documents", "chunks", idx.float_table} <= set(tables)
    assert all(v > 0 for v in tables.values())
    assert st["memory_bytes"] == sum(tables.values())
    assert st["db_bytes"] >= st["memory_bytes"]
    assert ":" not in st["db_path"].split("@")[0].split("//")[1]  # no password anywhere
    assert "pgvector" in store.self_check() and st["database"] in store.self_check()


def test_integrity_reports_rows_left_without_their_owner(store: PgMemoryStore, pg_url: str) -> None:
    idx, ids = fill(store, 3)
    assert store.integrity_check() == []
    with superuser(pg_url) as conn:
        # What pg_restore --disable-triggers or a hand edit can leave: foreign keys not enforced.
        conn.execute("SET session_replication_role = replica")
        conn.execute("INSERT INTO chunks(source_id, ord, text, locator, text_hash, created_at) "
                     "VALUES (987654, 0, 'stray', '{}', 'h', 0)")
        conn.execute("INSERT INTO documents(source_id, text, extractor) VALUES (987654, 'x', 't')")
        conn.execute(f"INSERT INTO {idx.float_table}(chunk_id, embedding) VALUES (%s, %s)",
                     (99999999, "[" + ",".join(["0.5"] * 8) + "]"))
    problems = store.integrity_check()
    assert any(p.startswith("1 chunks belong to a source that is gone") for p in problems), problems
    assert any(p.startswith("1 documents belong") for p in problems), problems
    assert f"vector index {idx.id}: 1 vectors belong to no chunk" in problems


def test_integrity_names_an_invalid_index_and_reindex_rebuilds_it(store: PgMemoryStore,
                                                                   pg_url: str) -> None:
    idx, ids = fill(store, 40)
    hnsw = f"{idx.float_table}_hnsw"
    with superuser(pg_url) as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (hnsw,))
    problems = store.integrity_check()
    assert any(p.startswith(f"index {hnsw} on {idx.float_table} is not valid") for p in problems)
    done = store.optimize(reindex=True)
    assert hnsw in done["reindexed"] and done["failed"] == []
    assert store.integrity_check() == []
    # The rebuilt graph answers: the nearest neighbour of a stored vector is its own chunk.
    hits = store.searcher(None).search("", limit=1, mode="vector", query_vector=unit(17)).hits
    assert hits and hits[0].source_id == ids[17]


def test_an_index_an_interrupted_reindex_left_behind_is_dropped(store: PgMemoryStore,
                                                                pg_url: str) -> None:
    idx, _ids = fill(store, 5)
    store.put_source(note(["same text twice"]))
    store.put_source(note(["same text twice"]))
    stray = f"{idx.float_table}_hnsw_ccnew"
    with superuser(pg_url) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            # Fails half-way, leaving an invalid index, as a killed REINDEX CONCURRENTLY does.
            conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {stray} ON chunks(text_hash)")
    assert any(stray in p for p in store.integrity_check())
    done = store.optimize(reindex=True)
    assert done["dropped"] == [stray]
    assert store.integrity_check() == []


def test_optimize_vacuums_every_table_and_keeps_everything(store: PgMemoryStore) -> None:
    _idx, ids = fill(store, 30)
    store.forget_ids(ids[:20])
    done = store.optimize()
    assert {"sources", "chunks", "documents"} <= set(done["vacuumed"])
    assert done["reindexed"] == [] and done["bytes_before"] > 0 and done["bytes_after"] > 0
    assert count(store, "SELECT count(*) FROM chunks") == 10
    # ANALYZE ran: the planner knows how many rows the chunks table holds now.
    assert count(store, "SELECT reltuples FROM pg_class WHERE relname = 'chunks'") == 10
    assert store.integrity_check() == []
