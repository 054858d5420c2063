"""Everything Deskmind writes stays under its own folders (DESKMIND_HOME here): a real
``deskmind index``, ``search`` and ``ask`` (with the embedded model) run with HOME set to an
empty folder leave that folder empty. onnxruntime alone used to write a device id and a
telemetry database under $HOME/.cache/Microsoft/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from deskmind.core.config.environment import keep_writes_home
from deskmind.core.config.paths import Paths


def _everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_index_search_and_ask_write_nothing_under_home(tmp_path: Path, deskmind_home: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "heron.md").write_text("# Heron\nThe heron waits by the weir for the tide to turn.\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "HF_", "ORT_", "NUMBA_", "MPL"))}
    env.update(HOME=str(home), DESKMIND_HOME=str(deskmind_home))

    def deskmind(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "deskmind", *args], capture_output=True,
                             text=True, env=env, timeout=600, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        return res.stdout

    assert deskmind("index", str(notes), "--no-progress").startswith("indexed 1,")
    assert "heron.md" in deskmind("search", "heron weir", "--limit", "1")
    answer = deskmind("ask", "Where does the heron wait?")
    assert "heron.md" in answer  # answered from memory, its source cited
    assert _everything_under(home) == []
    assert (deskmind_home / "data" / "memory.db").is_file()  # the writes went somewhere: here


def test_library_caches_point_under_the_cache_folder_unless_chosen(tmp_path: Path) -> None:
    paths = Paths.from_env({"DESKMIND_HOME": str(tmp_path)})
    env = {"HF_HOME": "/srv/models"}
    chosen = keep_writes_home(paths, env)
    assert env["ORT_DISABLE_TELEMETRY"] == "1"
    assert env["HF_HOME"] == "/srv/models"  # the person's own choice stands
    assert "HF_HOME" not in chosen
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path.resolve() / "cache" / "numba")
    assert not any(k.startswith("XDG_") for k in env)
