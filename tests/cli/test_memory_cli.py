"""The memory commands as other parts and scripts use them: the real ``deskmind`` process."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

import pytest

from deskmind.core.app import Core
from deskmind.core.embed.base import DEFAULT_MODEL_ID, FP32_MODEL_ID
from deskmind.core.memory import db
from deskmind.core.memory.sql import placeholders
from deskmind.core.memory.store import text_hash

from tests.cli.conftest import assert_one_line_error, run_deskmind, spawn_deskmind
from tests.core.memory.helpers import count, home_memory, note, query, rows, scalar
from tests.fakes.llm_server import FakeLLMServer

FILES = {
    "garden/tomatoes.md": "# Tomatoes\n\nThe tomato seedlings went into the greenhouse in May.\n",
    "garden/bees.md": "# Bees\n\nThe second hive swarmed; the queen settled in the apple tree.\n",
    "work/budget.txt": "Quarterly budget: travel costs rose after the Lisbon conference.\n",
    "work/invoice.txt": "Invoice XQ7734 from the plumbing contractor is due in March.\n",
    "music.txt": "Practise the Chopin nocturne slowly, left hand alone first.\n",
}


def make_tree(root: Path) -> Path:
    for rel, text in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def index_json(*paths: Path) -> dict:
    proc = run_deskmind("index", *map(str, paths), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def index_here(embedder, *paths: Path) -> None:
    """Set-up indexing in this process (with the session's embedder): cheaper than a command."""
    with Core() as core:
        core._embedders[embedder.model_id] = embedder
        assert core.indexer().index(paths).count("failed") == 0


def search_json(query: str, *extra: str) -> list[dict]:
    proc = run_deskmind("search", query, "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_reindexing_unchanged_files_does_no_embedding_work(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "docs")
    first = index_json(tree)
    assert first["indexed"] == 5 and first["embedded_chunks"] == first["chunks"] == 5
    again = index_json(tree)
    assert (again["indexed"], again["unchanged"], again["embedded_chunks"]) == (0, 5, 0), again
    # One edited file: only its chunk is embedded.
    (tree / "music.txt").write_text("Practise the Bach prelude slowly, right hand first.\n")
    edited = index_json(tree)
    assert (edited["indexed"], edited["unchanged"], edited["embedded_chunks"]) == (1, 4, 1), edited


def test_search_json_contract(tmp_path: Path, embedder) -> None:
    tree = make_tree(tmp_path / "docs")
    index_here(embedder, tree)
    hits = search_json("when is the plumber's bill due", "--limit", "3")
    assert isinstance(hits, list) and 1 <= len(hits) <= 3
    for h in hits:
        assert {"chunk_id", "source", "title", "locator", "score", "text"} <= h.keys()
        assert isinstance(h["chunk_id"], int)
        assert isinstance(h["source"], str) and Path(h["source"]).is_file()
        assert isinstance(h["title"], str) and h["title"]
        assert isinstance(h["locator"], dict)
        assert isinstance(h["score"], float) and h["score"] > 0
        assert isinstance(h["text"], str) and h["text"]
    assert hits[0]["source"] == str(tree / "work" / "invoice.txt")
    assert hits[0]["locator"] == {"line_start": 1, "line_end": 1}
    # Filters through the command line (kind and source together), and the plain output.
    scoped = search_json("garden costs", "--kind", "markdown", "--source", str(tree / "garden"),
                         "--limit", "10")
    assert sorted(Path(h["source"]).name for h in scoped) == ["bees.md", "tomatoes.md"]
    md = next(h for h in scoped if h["source"].endswith("tomatoes.md"))
    assert md["locator"]["heading"] == ["Tomatoes"] and md["locator"]["line_start"] == 1
    plain = run_deskmind("search", "Chopin nocturne", "--limit", "1", "--until", "2999-01-01")
    assert plain.returncode == 0 and "music.txt" in plain.stdout and "chunk" in plain.stdout


def test_search_by_collection(tmp_path: Path, embedder) -> None:
    tree = make_tree(tmp_path / "docs")
    vault = tmp_path / "Garden Vault"
    (vault / ".obsidian").mkdir(parents=True)
    (vault / "compost.md").write_text("# Compost\n\nThe garden compost heap needs turning weekly.\n")
    (vault / "seeds.md").write_text("# Seeds\n\nTomato seeds saved from the greenhouse crop.\n")
    index_here(embedder, tree, vault)
    everywhere = search_json("garden tomato greenhouse", "--limit", "10")
    assert any(h["source"].startswith(str(tree)) for h in everywhere)
    scoped = search_json("garden tomato greenhouse", "--limit", "10", "--collection", "Garden Vault")
    assert sorted(Path(h["source"]).name for h in scoped) == ["compost.md", "seeds.md"]
    proc = run_deskmind("search", "garden", "--collection", "Gardn Vault")
    assert_one_line_error(proc, "no collection is named 'Gardn Vault'", "'Garden Vault'")


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_forget_by_id_path_and_folder(tmp_path: Path, deskmind_home: Path, embedder) -> None:
    tree = make_tree(tmp_path / "docs")
    index_here(embedder, tree)
    with Core() as core:  # a note derived from the invoice file
        core._embedders[embedder.model_id] = embedder
        (inv,) = core.store.resolve(str(tree / "work" / "invoice.txt"))
        core.remember(note("Reminder derived from the plumbing invoice XQ7734.",
                           uri="deskmind://note/reminder", parent_id=inv))
    with home_memory(deskmind_home) as store:
        chunk_of = dict(query(store, "SELECT s.uri, c.id FROM chunks c JOIN sources s ON s.id = c.source_id"))

    # By id: the file and its derived note go; the receipt says so.
    proc = run_deskmind("forget", str(inv), "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert sorted(s["uri"] for s in r["sources"]) == sorted([str(tree / "work" / "invoice.txt"),
                                                             "deskmind://note/reminder"])
    assert (r["derived_sources"], r["documents"], r["chunks"], r["fts_rows"], r["vectors"]) == (1, 2, 2, 2, 2)

    # By path, with a human receipt.
    proc = run_deskmind("forget", str(tree / "music.txt"))
    assert proc.returncode == 0, proc.stderr
    assert "forgot source" in proc.stdout and "1 chunks" in proc.stdout and "1 vectors" in proc.stdout

    # By folder.
    r = json.loads(run_deskmind("forget", str(tree / "garden"), "--json").stdout)
    assert sorted(Path(s["uri"]).name for s in r["sources"]) == ["bees.md", "tomatoes.md"]

    gone = ["work/invoice.txt", "music.txt", "garden/tomatoes.md", "garden/bees.md"]
    gone_chunks = [chunk_of[str(tree / g)] for g in gone] + [chunk_of["deskmind://note/reminder"]]
    with home_memory(deskmind_home) as store:
        assert [r[0] for r in query(store, "SELECT uri FROM sources")] == [str(tree / "work" / "budget.txt")]
        assert count(store, "SELECT count(*) FROM documents") == 1
        assert count(store, "SELECT count(*) FROM chunks") == 1
        idx = store.active_index()
        assert count(store, f"SELECT count(*) FROM {idx.float_table}") == 1
        tables = [(idx.float_table, "chunk_id")]
        if store.backend == "sqlite":
            # Its bit vectors and full-text rows are tables of their own (on PostgreSQL the
            # tsvector is a column of the chunk, and the HNSW index lives on the table above).
            tables += [(f"vecbits_{idx.id}", "rowid"), ("chunks_fts_docsize", "id")]
        for table, col in tables:
            assert count(store, f"SELECT count(*) FROM {table} WHERE {col} IN "
                                f"({placeholders(len(gone_chunks))})", *gone_chunks) == 0, table
    hits = search_json("plumbing invoice XQ7734 tomato greenhouse hive queen Chopin nocturne", "--limit", "20")
    assert [h["source"] for h in hits] == [str(tree / "work" / "budget.txt")]
    with Core() as core:  # and by each side of the search on its own
        core._embedders[embedder.model_id] = embedder
        for q in ("plumbing invoice XQ7734", "tomato greenhouse", "hive queen", "Chopin nocturne"):
            for mode in ("fts", "vector"):
                found = core.searcher().search(q, limit=20, mode=mode).hits
                assert all(h.source.endswith("budget.txt") for h in found), (q, mode, found)


@pytest.mark.usefixtures("on_both_backends")  # CI runs it on PostgreSQL too
def test_stats_and_doctor(tmp_path: Path, deskmind_home: Path, embedder) -> None:
    index_here(embedder, make_tree(tmp_path / "docs"))
    proc = run_deskmind("stats", "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["sources"] == 5 and s["chunks"] == 5
    assert s["sources_by_kind"] == {"markdown": 2, "text": 3}
    assert s["sources_by_status"] == {"indexed": 5}
    assert s["vector_index"]["vectors"] == 5 and s["vector_index"]["dim"] == 384
    assert s["vector_index"]["model_id"] == DEFAULT_MODEL_ID
    pg_url = os.environ.get("DESKMIND_DB")
    if pg_url:
        # The server, database, versions and sizes, and never a password.
        assert s["backend"] == "postgres" and s["db_path"] == pg_url and s["db_bytes"] > 0
        assert s["database"] == urlsplit(pg_url).path.lstrip("/") and s["server"]
        assert s["pgvector"] and s["server_version"]
        assert s["table_bytes"]["chunks"] > 0 and sum(s["table_bytes"].values()) == s["memory_bytes"]
        text = run_deskmind("stats").stdout
        assert text.startswith(f"database: {pg_url} (PostgreSQL {s['server_version']}, pgvector "
                               f"{s['pgvector']}; database {s['database']} at {s['server']}"), text
        assert "tables: " in text and "chunks " in text
    else:
        assert s["backend"] == "sqlite"
        assert s["db_path"] == str(deskmind_home / "data" / "memory.db") and s["db_bytes"] > 0
    assert s["building_indexes"] == [] and s["migrations"][0].startswith("m001_")

    proc = run_deskmind("doctor")
    lines = proc.stdout.splitlines()
    engine = "postgresql server" if pg_url else "sqlite extensions"
    for check in (engine, "embedding model", "memory database", "vector index"):
        assert any(ln.startswith("ok ") and f" {check}: " in ln for ln in lines), proc.stdout
    if pg_url:
        assert f"PostgreSQL {s['server_version']} with pgvector {s['pgvector']}" in proc.stdout
    else:
        assert "sqlite-vec" in proc.stdout and "FTS5" in proc.stdout
    assert "sha256 verified" in proc.stdout
    # No model server runs here: the embedded llama.cpp runtime with the bundled model answers,
    # so the runtime check passes and nothing fails (no microphone or keyring only warns).
    assert any(ln.startswith("ok   model runtimes: embedded (") for ln in lines), proc.stdout
    assert [ln for ln in lines if ln.startswith("FAIL")] == [], proc.stdout
    assert proc.returncode == 0, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    # With a runtime listening, every check passes or only warns (no microphone or keyring on
    # a headless machine is a warning): the exit is 0.
    with FakeLLMServer() as server:
        (deskmind_home / "config").mkdir(parents=True, exist_ok=True)
        (deskmind_home / "config" / "routing.toml").write_text(
            f'[providers.here]\nkind = "openai"\nurl = "{server.url}"\n', encoding="utf-8")
        proc = run_deskmind("doctor")
    lines = proc.stdout.splitlines()
    assert any(ln.startswith("ok   model runtimes: here (") for ln in lines), proc.stdout
    assert all(ln.startswith(("ok ", "warn ")) for ln in lines if ln[:1].isalpha()), proc.stdout
    assert proc.returncode == 0, proc.stdout
    (deskmind_home / "config" / "routing.toml").unlink()

    # A damaged database: the doctor says so in one line, and exits non-zero.
    if pg_url:
        # What a restore with foreign keys off can leave: passages of a source that is gone.
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute("DELETE FROM sources WHERE uri = %s", (str(tmp_path / "docs" / "music.txt"),))
        damage = "1 chunks belong to a source that is gone"
    else:
        dbfile = deskmind_home / "data" / "memory.db"
        for suffix in ("-wal", "-shm"):
            Path(str(dbfile) + suffix).unlink(missing_ok=True)
        dbfile.write_bytes(b"this is not a database at all\n" * 200)
        damage = "not a Deskmind memory database"
    proc = run_deskmind("doctor")
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    bad = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL")]
    assert any(" memory database: " in ln and damage in ln for ln in bad), bad


def test_a_killed_reembed_resumes(tmp_path: Path, deskmind_home: Path, embedder) -> None:
    texts = [f"Log line {i}: sensor {i % 9} read {i * 3} units at dawn." for i in range(140)]
    texts.append("The orchestra tuned to the oboe's A before the overture.")
    with Core() as core:
        idx = core.store.ensure_active_index(embedder.model_id, embedder.dim)
        vecs = dict(zip(map(text_hash, texts), embedder.embed(texts)))
        for i, t in enumerate(texts):
            core.store.put_source(note(t, uri=f"deskmind://note/{i}"), idx, vecs)
        total = count(core.store, "SELECT count(*) FROM chunks")
    model = FP32_MODEL_ID  # the same weights computing in fp32: a real second index
    proc = spawn_deskmind("reembed", "--model", model, "--json")
    store = home_memory(deskmind_home)
    done = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            b = store.sql.query_one("SELECT id, watermark FROM vector_indexes WHERE status = 'building'")
            if b and b[1] > 0:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL, "the rebuild should still have been running"
        assert store.integrity_check() == []
        building = count(store, "SELECT id FROM vector_indexes WHERE status = 'building'")
        done = count(store, f"SELECT count(*) FROM vectors_{building}")
        assert 0 < done < total
    finally:
        store.close()
        if proc.poll() is None:
            proc.kill()
    # Meanwhile search still works on the old index.
    assert search_json("oboe tuning", "--limit", "1")[0]["source"] == "deskmind://note/140"
    with home_memory(deskmind_home) as store:
        stats = store.stats()
    assert [b["model_id"] for b in stats["building_indexes"]] == [model]
    assert stats["vector_index"]["model_id"] == DEFAULT_MODEL_ID

    proc = run_deskmind("reembed", "--model", model, "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["model_id"] == model and res["index_id"] == building
    assert res["embedded"] == total - done and res["replaced_model"] == DEFAULT_MODEL_ID
    with home_memory(deskmind_home) as store:
        stats = store.stats()
        assert stats["building_indexes"] == [] and stats["vector_index"]["vectors"] == total
        assert stats["vector_index"]["model_id"] == model
        # The new index answers with the model under its new id (here: the same ONNX file).
        hits = store.searcher(lambda _mid: embedder).search("oboe tuning", limit=1, mode="vector").hits
        assert hits[0].source == "deskmind://note/140"


def test_backup_while_another_process_writes(tmp_path: Path, deskmind_home: Path) -> None:
    with Core() as core:
        stop = threading.Event()
        n = [0]

        def busy() -> None:
            while not stop.is_set():
                core.store.put_source(note([f"busy {n[0]} a", f"busy {n[0]} b"], uri=f"deskmind://note/busy-{n[0]}"))
                n[0] += 1

        t = threading.Thread(target=busy)
        t.start()
        try:
            while n[0] < 10:
                time.sleep(0.01)
            proc = run_deskmind("backup", str(tmp_path / "copy.db"))
        finally:
            stop.set()
            t.join()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("backup written: ") and str(tmp_path / "copy.db") in proc.stdout
    conn = db.connect(tmp_path / "copy.db", readonly=True)
    try:
        assert rows(conn, "PRAGMA integrity_check") == [("ok",)]
        assert scalar(conn, "PRAGMA journal_mode") == "delete"  # a self-contained single file
        per = rows(conn, "SELECT (SELECT count(*) FROM chunks c WHERE c.source_id = s.id) FROM sources s")
        assert len(per) >= 10 and all(r[0] == 2 for r in per)
        assert scalar(conn, "SELECT count(*) FROM chunks") == scalar(conn, "SELECT count(*) FROM chunks_fts_docsize")
    finally:
        conn.close()


def test_an_index_of_another_model_keeps_working_and_doctor_advises_reembed(
        tmp_path: Path, deskmind_home: Path) -> None:
    """A memory whose vectors an older default (fp32) made: search embeds queries with that
    model, new notes get its vectors too, and doctor warns (not fails) with the way forward."""
    from deskmind.core.embed.base import EmbedderSpec
    from deskmind.core.embed.factory import create_embedder

    fp32 = create_embedder(EmbedderSpec(FP32_MODEL_ID, {"cache_dir": str(tmp_path / "models")}))
    with Core() as core:
        idx = core.store.ensure_active_index(fp32.model_id, fp32.dim)
        text = "The orchestra tuned to the oboe's A before the overture."
        core.store.put_source(note(text, uri="deskmind://note/oboe"), idx,
                              {text_hash(text): fp32.embed([text])[0]})
        assert core.active_embedder().model_id == FP32_MODEL_ID
        later = core.remember(note("Tune the violin before the concert.", uri="deskmind://note/violin"))
        assert later and core.store.active_index().model_id == FP32_MODEL_ID
    hits = json.loads(run_deskmind("search", "musicians preparing instruments", "--json").stdout)
    assert {h["source"] for h in hits[:2]} == {"deskmind://note/oboe", "deskmind://note/violin"}
    proc = run_deskmind("doctor")
    line = next(ln for ln in proc.stdout.splitlines() if " vector index: " in ln)
    assert line.startswith("warn") and "deskmind reembed" in line and FP32_MODEL_ID in line
