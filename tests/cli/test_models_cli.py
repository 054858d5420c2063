"""deskmind models use|list through the real command line."""

from __future__ import annotations

import json

from tests.cli.conftest import assert_one_line_error, run_deskmind
from tests.core.models.test_choice_and_check import write_gguf


def test_use_list_and_clear(tmp_path, deskmind_home):
    model = write_gguf(tmp_path / "tiny.gguf")
    r = run_deskmind("models", "use", str(model), "--class", "coder")
    assert r.returncode == 0, r.stderr
    assert "coder: tiny test model (llama" in r.stdout
    listed = json.loads(run_deskmind("models", "list", "--json").stdout)
    assert listed["chosen"] == {"fast": None, "general": None, "coder": str(model.resolve())}
    assert run_deskmind("models", "use", "--clear", "--class", "coder").returncode == 0
    assert "(none chosen)" in run_deskmind("models", "list").stdout.splitlines()[2]


def test_a_file_that_is_not_a_gguf_is_refused_and_nothing_changes(tmp_path, deskmind_home):
    page = tmp_path / "page.gguf"
    page.write_bytes(b"<html>login</html>")
    assert_one_line_error(run_deskmind("models", "use", str(page)), "not a GGUF", code=2)
    assert_one_line_error(run_deskmind("models", "use", str(tmp_path / "none.gguf")),
                          "cannot read", code=2)
    listed = json.loads(run_deskmind("models", "list", "--json").stdout)
    assert listed["chosen"]["general"] is None


def test_models_alone_still_lists_the_runtimes(deskmind_home):
    r = run_deskmind("models", "--json")
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), (list, dict))


def test_pull_a_local_file_use_it_and_remove_it(tmp_path, deskmind_home):
    model = write_gguf(tmp_path / "tiny.gguf")
    r = run_deskmind("models", "pull", str(model), "--use", "fast")
    assert r.returncode == 0, r.stderr
    assert "tiny.gguf: tiny test model (llama" in r.stdout and "MB]" not in r.stdout
    assert "tiny.gguf: [" in r.stderr  # the progress bar
    listed = json.loads(run_deskmind("models", "list", "--json").stdout)
    installed = deskmind_home / "data" / "models" / "tiny.gguf"
    assert listed["library"] == [{"name": "tiny.gguf", "path": str(installed),
                                  "bytes": model.stat().st_size}]
    assert listed["chosen"]["fast"] == str(installed.resolve())
    assert_one_line_error(run_deskmind("models", "pull", str(model)), "already in the library")
    r = run_deskmind("models", "remove", "tiny.gguf")
    assert r.returncode == 0 and "fast: no model chosen" in r.stdout
    assert not installed.exists()
    assert_one_line_error(run_deskmind("models", "remove", "tiny.gguf"), "not in the library")


def test_pull_from_a_url_is_in_the_egress_ledger(tmp_path, deskmind_home):
    from deskmind.core.routing.ledger import EgressLedger
    from tests.core.memory.helpers import home_memory
    from tests.core.models.test_download import ModelServer

    srv = ModelServer(write_gguf(tmp_path / "tiny.gguf").read_bytes())
    try:
        r = run_deskmind("models", "pull", srv.url())
    finally:
        srv.close()
    assert r.returncode == 0, r.stderr
    with home_memory(deskmind_home) as store:  # where the command kept it
        rows = EgressLedger(store).entries()
    assert [(e.host, e.model, e.status) for e in rows] == [("127.0.0.1", "tiny.gguf", "ok")]


def test_catalogue_marks_what_fits(deskmind_home):
    import psutil

    out = json.loads(run_deskmind("models", "catalogue", "--json").stdout)
    assert out["ram_mb"] == psutil.virtual_memory().total // (1 << 20)
    assert {m["cls"] for m in out["models"]} == {"fast", "general", "coder"}
    assert all(m["fits"] == (m["ram_mb"] <= out["ram_mb"]) for m in out["models"])
