"""Evidence, relevance and the answer check with the real MiniLM embedder; the repetition stop."""

from __future__ import annotations

import re

from deskmind.core.ask.evidence import (RELEVANCE_THRESHOLD, EvidenceFinder, pick_evidence,
                                        split_sentences)
from deskmind.core.ask.grounding import ModelProfile, choose_passages, parameters_from
from deskmind.core.ask.repetition import RepetitionGuard
from deskmind.core.memory.models import Hit


def hit(text: str, cid: int = 1, title: str = "note") -> Hit:
    return Hit(chunk_id=cid, source_id=cid, source=f"/notes/{title}.md", title=title, kind="text",
               locator={"line_start": 1}, score=0.03, text=text, privacy="private")


BOILER = ("We moved into the flat in 2021. The boiler was serviced on 3 March 2025 by Heatwell. "
          "The engineer said the pressure valve should be replaced next year. Parking is free on "
          "Sundays.")


def test_sentences_split_on_ends_and_list_items_not_on_abbreviations_or_decimals():
    assert split_sentences("Dr. Okafor is at 9.30 today. Bring the card!\n- milk\n- eggs") == [
        "Dr. Okafor is at 9.30 today.", "Bring the card!", "milk", "eggs"]
    assert len(split_sentences("A. " * 200)) <= 10      # bounded however long the passage


def test_evidence_is_the_sentence_that_answers_not_the_passage_start(embedder):
    f = EvidenceFinder(embedder)
    [g] = f.grade("When was the boiler serviced?", [hit(BOILER)])
    assert "3 March 2025" in g.evidence and "moved into the flat" not in g.evidence
    assert g.relevant and g.relevance > RELEVANCE_THRESHOLD
    [g] = f.grade("What should be replaced next year?", [hit(BOILER)])
    assert "pressure valve" in g.evidence and "Parking" not in g.evidence


def test_unrelated_questions_fall_under_the_relevance_threshold(embedder):
    f = EvidenceFinder(embedder)
    for q in ("What is the capital of Australia?", "How tall is the Eiffel Tower?",
              "What did I note about budgets?"):
        [g] = f.grade(q, [hit(BOILER)])
        assert not g.relevant, (q, g.relevance)


def test_answer_check_marks_invented_sentences_and_numbers(embedder):
    f = EvidenceFinder(embedder)
    graded = f.grade("When was the boiler serviced?", [hit(BOILER)])
    checked = f.check_answer("The boiler was serviced on 3 March 2025 by Heatwell [1]. "
                             "It will cost 950 euros to replace the valve. "
                             "Heatwell also installed solar panels on the roof of the school.",
                             graded)
    assert [c.supported for c in checked] == [True, False, False]
    # "the notes do not say" is no claim; an answer with no passage at all is all unbacked
    assert f.check_answer("The notes do not say.", graded)[0].supported
    assert not f.check_answer("Paris is the capital of France.", [])[0].supported


def test_refined_evidence_follows_the_fact_the_answer_used(embedder):
    f = EvidenceFinder(embedder)
    graded = f.grade("What did the engineer from Heatwell say?", [hit(BOILER)])
    f.refine("What did the engineer from Heatwell say?",
             "The pressure valve should be replaced next year [1].", graded)
    assert "pressure valve" in graded[0].evidence


def test_a_short_best_sentence_comes_with_its_neighbour():
    assert pick_evidence(["Paid 400 euros.", "It was for the fence.", "Other."], [0.7, 0.3, 0.1]) == \
        "Paid 400 euros. It was for the fence."
    assert pick_evidence(["The spare house key is under the blue flower pot by the back door.",
                          "We moved in 2021."], [0.8, 0.1]) == \
        "The spare house key is under the blue flower pot by the back door."


def test_small_models_get_few_trimmed_passages_big_ones_more(embedder):
    f = EvidenceFinder(embedder)
    long = BOILER + " " + " ".join(f"Line {i} says nothing about heating at all." for i in range(30))
    hits = [hit(long, 1, "boiler")] + [hit(f"The boiler in house {i} was serviced by Heatwell.", i + 2, f"h{i}")
                                       for i in range(5)]
    graded = f.grade("When was the boiler serviced?", hits)
    small = choose_passages(graded, ModelProfile("smollm2-135m", 8192, 1.35e8), 6, 1024)
    big = choose_passages(graded, ModelProfile("llama3:70b", 8192, 7e10), 6, 1024)
    assert len(small) == 3 and len(big) == 6
    text = dict((g.hit.chunk_id, t) for g, t in small)[1]
    assert "3 March 2025" in text and len(text) <= 500 and "Line 29" not in text
    # a small context window shrinks every passage to fit beside the answer
    tiny = choose_passages(graded, ModelProfile("x", 1400, 7e10), 6, 1024)
    assert sum(len(t) for _, t in tiny) <= (1400 - 1024 - 200) * 3.5


def test_parameter_counts_from_names():
    assert parameters_from("smollm2-135m-instruct") == 1.35e8
    assert parameters_from("llama3.2:3b") == 3e9
    assert parameters_from("Qwen2.5-0.5B-Instruct") == 5e8
    assert parameters_from("mistral") is None and parameters_from("gpt-4o-mini") is None


def stream(guard: RepetitionGuard, text: str) -> bool:
    return any(guard.feed(piece) for piece in re.findall(r"\S+\s*", text))


def test_repetition_stops_a_looping_sentence_and_keeps_the_first():
    g = RepetitionGuard()
    assert stream(g, "The key is under the pot [1]. " * 5)
    assert g.answer() == "The key is under the pot [1]."


def test_repetition_of_lines_and_of_one_word():
    g = RepetitionGuard()
    assert any(g.feed(x) for x in ["[1] Garden\n", "ok\n", "[1] Garden\n", "yes\n", "[1] Garden\n"])
    assert g.answer() == "[1] Garden\nok"
    g = RepetitionGuard()
    assert stream(g, "the " * 40) and g.answer() == "the the the the the the"


def test_an_ordinary_answer_is_not_cut():
    g = RepetitionGuard()
    text = ("The boiler was serviced on 3 March 2025 by Heatwell [1]. The engineer said the "
            "pressure valve should be replaced next year [1]. The boiler is in the kitchen.\n")
    assert not stream(g, text) and g.answer() == text
