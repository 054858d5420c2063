"""Two installations of Deskmind (each its own DESKMIND_HOME, so its own machine id) on one
memory: a PostgreSQL database, and for comparison one SQLite file. Every step runs the real
``deskmind`` command in a process of its own."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from deskmind.core.memory.backend import open_memory
from deskmind.core.memory.machine import load_machine

from tests.cli.conftest import run_deskmind

KEY = "The spare house key is under the blue flower pot by the back door."


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Every command on a fresh home would derive the int8 model again: one cache for all.
    return tmp_path_factory.mktemp("two-machines-models")


@pytest.fixture(params=["postgres", "sqlite"])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "shared" / "memory.db")
    return request.getfixturevalue("pg_url")


class Machine:
    """One installation: its own DESKMIND_HOME on the shared memory."""

    def __init__(self, root: Path, db: str, cache: Path) -> None:
        self.home = root
        (root / "cache").mkdir(parents=True)
        (root / "cache" / "models").symlink_to(cache, target_is_directory=True)
        self.env = {**os.environ, "DESKMIND_HOME": str(root), "DESKMIND_DB": db,
                    "DESKMIND_DISCOVER": ""}

    def run(self, *args: str, ok: bool = True) -> str:
        proc = run_deskmind(*args, env=self.env, timeout=300)
        if ok:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout

    def json(self, *args: str) -> object:
        return json.loads(self.run(*args, "--json"))

    @property
    def id(self) -> str:
        return load_machine(self.home / "data").id


@pytest.fixture
def machines(tmp_path: Path, shared_db: str, model_cache: Path) -> tuple[Machine, Machine]:
    if not shared_db.startswith("postgres"):
        Path(shared_db).parent.mkdir()
    return (Machine(tmp_path / "laptop", shared_db, model_cache),
            Machine(tmp_path / "desktop", shared_db, model_cache))


def test_a_note_written_on_one_is_found_on_the_other_within_seconds(machines, embedder, shared_db):
    laptop, desktop = machines
    desktop.run("note", "--text", "Tomatoes go by the south wall this year.", "--title", "Garden")
    # The desktop app stays open the whole time, its search warmed up (on SQLite, its in-memory
    # vector copy loaded) before the note exists.
    running = open_memory(shared_db, machine=desktop.home / "data")
    try:
        searcher = running.searcher(lambda _model: embedder)
        running.warm_vectors()
        before = searcher.search("where is the spare house key", limit=3).hits
        assert [h.title for h in before] == ["Garden"]  # the nearest vector, nothing better
        laptop.run("note", "--text", KEY, "--title", "House key")
        written = time.monotonic()
        found = []
        while time.monotonic() - written < 5.0 and not found:
            found = [h for h in searcher.search("where is the spare house key", limit=3).hits
                     if h.title == "House key"]
            if not found:
                time.sleep(0.1)
        assert found, "the running app did not find the other machine's note within 5 s"
        assert found[0].vector_rank is not None, "found by full text only: no vector was seen"
    finally:
        running.close()
    # And the desktop's own commands find it, by search and by ask (answered from it).
    hits = desktop.json("search", "where did I leave the spare house key")
    assert hits[0]["title"] == "House key"
    ans = desktop.json("ask", "Where is the spare house key?", "--no-save")
    assert not ans["abstained"] and KEY in ans["answer"]
    assert ans["citations"][0]["title"] == "House key"


def test_forget_on_one_removes_it_everywhere_with_one_receipt(machines):
    laptop, desktop = machines
    made = laptop.json("note", "--text", "Gate code for the allotment is 4711.",
                       "--title", "Allotment gate")
    assert desktop.json("search", "allotment gate code")[0]["title"] == "Allotment gate"
    receipt = desktop.json("forget", made["uri"])
    assert [s["id"] for s in receipt["sources"]] == [made["id"]]
    assert receipt["chunks"] >= 1 and receipt["vectors"] == receipt["chunks"]
    assert receipt["documents"] == 1
    for m in (laptop, desktop):
        assert all(h["source"] != made["uri"] for h in m.json("search", "allotment gate code"))
    # Already gone on the laptop too: nothing left there to forget.
    proc = run_deskmind("forget", made["uri"], env=laptop.env)
    assert proc.returncode != 0 and "nothing in memory matches" in proc.stderr


def _sources_by_uri(m: Machine) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in m.json("sources"):
        out.setdefault(s["uri"], []).append(s)
    return out


def test_one_folder_path_indexed_on_both_keeps_a_source_per_machine(machines, tmp_path):
    laptop, desktop = machines
    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "tent.md").write_text("# Camping\nPack the tent, the stove and two litres of water.\n")
    (folder / "bikes.md").write_text("# Bikes\nThe chain wants oil every two hundred kilometres.\n")
    tent, bikes = str(folder / "tent.md"), str(folder / "bikes.md")

    assert laptop.json("index", str(folder))["indexed"] == 2
    assert desktop.json("index", str(folder))["indexed"] == 2  # not "unchanged": its own files
    by_uri = _sources_by_uri(laptop)
    assert {s["machine"] for s in by_uri[tent]} == {laptop.id, desktop.id}
    mine = [s for s in by_uri[tent] if s["this_machine"]]
    assert len(mine) == 1 and mine[0]["machine"] == laptop.id
    assert {s["machine_name"] for s in by_uri[tent]} == {os.uname().nodename}
    assert "(this machine)" in laptop.run("sources")
    shown = laptop.json("store", "show")
    assert shown["machine"]["id"] == laptop.id
    assert [m["id"] for m in shown["other_machines"]] == [desktop.id]

    # Re-indexing after a change touches this machine's source only.
    (folder / "tent.md").write_text("# Camping\nPack the tent, the stove and a water filter.\n")
    assert laptop.json("index", str(folder))["indexed"] == 1
    texts = {s["machine"]: s["content_hash"] for s in _sources_by_uri(desktop)[tent]}
    assert texts[laptop.id] != texts[desktop.id]
    # A file gone from the folder is stale on the machine that notices it, not on the other.
    (folder / "bikes.md").unlink()
    assert laptop.json("index", str(folder))["removed"] == 1
    assert [s["machine"] for s in _sources_by_uri(desktop)[bikes]] == [desktop.id]

    # forget PATH on the desktop: its own sources under the folder, with one receipt.
    receipt = desktop.json("forget", str(folder))
    assert sorted(s["uri"] for s in receipt["sources"]) == [bikes, tent]
    left = _sources_by_uri(laptop)
    assert [s["machine"] for s in left[tent]] == [laptop.id] and bikes not in left
    # The desktop's search still finds the laptop's file (the memory is shared; the path is
    # the laptop's).
    hit = desktop.json("search", "water filter")[0]
    assert hit["source"] == tent
