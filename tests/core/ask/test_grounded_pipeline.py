"""The pipeline grounds its prompt, abstains when memory holds nothing relevant, labels what no
passage backs and stops runaway repetition: real embedder, real memory, a loopback server
speaking Ollama's protocol."""

from __future__ import annotations

import asyncio
import re

from deskmind.core.ask.pipeline import MEMORY_EMPTY, NOTHING_RELEVANT, AskOptions
from deskmind.core.ask.session import ask_session
from deskmind.core.routing.config import parse_routing
from tests.core.ask.conftest import FAST, add_note
from tests.fakes.llm_server import FakeLLMServer, Faults, Reply


def rules(url: str, model: str, classes_and_rules: str | None = None) -> str:
    return f"""
[defaults]
discover = false

[providers.local]
kind = "ollama"
url = "{url}"
""" + (classes_and_rules or f"""
[classes]
general = ["local:{model}"]

[[rules]]
name = "local-first"
class = "general"
zones = ["machine"]
""")


def ask(core, srv: FakeLLMServer, question: str, model: str = "fake-model:1b",
        opts: AskOptions | None = None, events: list | None = None):
    cfg = parse_routing(rules(srv.url, model))

    async def main():
        async with ask_session(core, cfg=cfg, targets=(), embedded=None, timeouts=FAST) as p:
            return await p.run(question, opts or AskOptions(), events.append if events is not None else None)

    return asyncio.run(main())


def conversations(core) -> list:
    return [s for s in core.store.list_sources() if s.kind == "conversation"]


def test_empty_memory_says_so_and_never_asks_the_model(core):
    with FakeLLMServer(models=["fake-model:1b"], reply=Reply("Budgets were not a good idea.")) as srv:
        res = ask(core, srv, "What did I note about budgets?")
        assert srv.chat_requests() == []
    assert res.abstained and not res.grounded and res.answer == MEMORY_EMPTY
    assert res.citations == [] and res.route["model"] == ""
    assert res.route["reason"] == "no model asked: memory is empty (nothing indexed yet)"
    assert conversations(core) == []


def test_unrelated_memory_says_so_and_never_asks_the_model(core):
    add_note(core, "The spare house key is under the blue flower pot by the back door.", "private", "Key")
    add_note(core, "Tomatoes go by the south wall this year.", "private", "Garden")
    with FakeLLMServer(models=["fake-model:1b"], reply=Reply("Canberra.")) as srv:
        res = ask(core, srv, "What is the capital of Australia?")
        assert srv.chat_requests() == []
    assert res.abstained and res.answer == NOTHING_RELEVANT
    assert "closest passage" in res.route["reason"] and "under the 0.38 needed" in res.route["reason"]


def test_a_small_model_without_grammars_answers_with_the_sentence_that_stands_out(core):
    add_note(core, "We moved in 2021. The boiler was serviced on 3 March 2025 by Heatwell. "
                   "Parking is free on Sundays.", "private", "Boiler")
    for i in range(5):
        add_note(core, f"The boiler at the office number {i} is checked by Heatwell every winter.",
                 "private", f"Office {i}")
    with FakeLLMServer(models=["fake-model:135m"], reply=Reply("The boiler is fine [1].")) as srv:
        res = ask(core, srv, "When was my boiler serviced?", model="fake-model:135m",
                  opts=AskOptions(save=False))
        # A 135M model's own words are mostly wrong, and Ollama takes no grammar to hold it to
        # the notes' sentences: the best sentence is the answer, and the model is not asked.
        assert srv.chat_requests() == []
    assert res.answer == "The boiler was serviced on 3 March 2025 by Heatwell. [1]"
    assert res.route["extractive"] and res.route["model_asked"] is False
    assert res.grounded and not res.abstained and res.unsupported == []
    assert 1 <= res.route["passages"] <= 3 and res.route["model_parameters"] == 1.35e8
    boiler = res.citations[0]
    assert boiler.title == "Boiler" and "3 March 2025" in boiler.evidence and "Parking" not in boiler.evidence
    assert boiler.to_dict()["evidence"] == boiler.evidence


def test_a_bigger_model_gets_the_grounded_prompt_without_locators(core):
    add_note(core, "We moved in 2021. The boiler was serviced on 3 March 2025 by Heatwell. "
                   "Parking is free on Sundays.", "private", "Boiler")
    reply = "The boiler was serviced on 3 March 2025 by Heatwell [1]."
    with FakeLLMServer(models=["fake-model:1b"], reply=Reply(reply)) as srv:
        res = ask(core, srv, "When was my boiler serviced?", opts=AskOptions(save=False))
        body = srv.chat_requests()[0].json()
    prompt = body["messages"][-1]["content"]
    assert re.findall(r"^\[(\d+)\] ", prompt, re.M) == ["1"] and "3 March 2025" in prompt
    assert "line" not in prompt and "deskmind://" not in prompt        # no locator noise
    assert res.answer == reply and "extractive" not in res.route and res.unsupported == []


def test_sentences_no_passage_backs_are_reported(core):
    add_note(core, "The spare house key is under the blue flower pot by the back door.", "private", "Key")
    reply = ("The spare key is under the blue flower pot [1]. "
             "A second key was given to the neighbour in 2019.")
    with FakeLLMServer(models=["fake-model:1b"], reply=Reply(reply)) as srv:
        res = ask(core, srv, "Where is the spare house key?")
    assert res.answer == reply
    assert res.unsupported == ["A second key was given to the neighbour in 2019."]


def test_runaway_repetition_is_stopped_and_cut_where_it_began(core):
    add_note(core, "The spare house key is under the blue flower pot by the back door.", "private", "Key")
    loop = "The key is under the pot [1]. " * 100
    events: list = []
    with FakeLLMServer(models=["fake-model:1b"], reply=Reply(loop.strip()),
                       faults=Faults(token_delay=0.01)) as srv:
        res = ask(core, srv, "Where is the spare house key?", events=events)
    tokens = [e for e in events if e.kind == "token"]
    assert res.stopped == "repetition" and res.answer == "The key is under the pot [1]."
    assert len(tokens) < 40                                # of 700: the stream was closed early
    stop = [e for e in events if e.kind == "stopped"]
    assert stop and "repeating" in stop[0].text and stop[0].data["answer"] == res.answer
    saved = conversations(core)
    assert len(saved) == 1 and saved[0].title.startswith("Where is the spare")


def test_without_memory_the_answer_is_labelled_the_models_own(core):
    with FakeLLMServer(models=["fake-model:1b"], reply=Reply("Canberra is the capital.")) as srv:
        res = ask(core, srv, "What is the capital of Australia?", opts=AskOptions(use_memory=False))
        assert len(srv.chat_requests()) == 1
    assert not res.abstained and not res.grounded
    assert res.unsupported == ["Canberra is the capital."]


def test_with_tools_the_model_is_asked_even_when_memory_has_nothing(core):
    with FakeLLMServer(models=["fake-model:1b"], reply=Reply("Let me look.")) as srv:
        res = ask(core, srv, "What did I note about budgets?", opts=AskOptions(tools=True))
        assert len(srv.chat_requests()) == 1
    assert not res.abstained


def test_earlier_turns_reach_the_model_but_memory_is_searched_for_the_question_alone(core):
    add_note(core, "The spare house key is under the blue flower pot by the back door.", "private", "Key")
    add_note(core, "Tomatoes go by the south wall this year.", "private", "Garden")
    earlier = (("Where is the spare house key?", "Under the blue flower pot [1]."),)
    with FakeLLMServer(models=["fake-model:8b"], reply=Reply("By the south wall [1].")) as srv:
        res = ask(core, srv, "Where do the tomatoes go?",
                  model="fake-model:8b", opts=AskOptions(save=False, earlier=earlier))
        [req] = srv.chat_requests()
    msgs = req.json()["messages"]
    assert [m["role"] for m in msgs[-3:]] == ["user", "assistant", "user"]
    # The earlier answer without its citation mark: "[1]" named that question's passage.
    assert msgs[-3]["content"] == earlier[0][0] and msgs[-2]["content"] == "Under the blue flower pot."
    assert "Where do the tomatoes go?" in msgs[-1]["content"]
    # The passages are those of the new question: the key's note is not sent again.
    assert "south wall" in msgs[-1]["content"] and "flower pot" not in msgs[-1]["content"]
    assert [c.title for c in res.citations] == ["Garden"]


def test_earlier_turns_take_their_share_of_a_small_window_from_the_passages(core):
    for n in range(5):
        add_note(core, f"The lawnmower blades were sharpened on {n + 4} May by Greenway. " + " ".join(
            f"Lawnmower note {n}, line {i}: the blades of the lawnmower were checked." for i in range(9)),
            "private", f"Lawnmower {n}")
    long_answer = "The hedge trimmer " + "was oiled and stored in the garage, " * 20
    earlier = tuple((f"What happened to tool {i}?", long_answer) for i in range(3))
    window, answer_tokens = 1500, 256

    def prompt_chars(opts: AskOptions) -> int:
        with FakeLLMServer(models=["fake-model:8b"], context_length=window,
                           reply=Reply("On 4 May [1].")) as srv:
            ask(core, srv, "When were the lawnmower blades sharpened?", model="fake-model:8b", opts=opts)
            [req] = srv.chat_requests()
        return sum(len(m["content"]) for m in req.json()["messages"])

    alone = prompt_chars(AskOptions(save=False, max_tokens=answer_tokens))
    following = prompt_chars(AskOptions(save=False, max_tokens=answer_tokens, earlier=earlier))
    room = (window - answer_tokens) * 3.5          # characters the window holds beside the answer
    assert alone > room * 0.7                        # the note alone nearly fills it...
    assert following <= room, (following, room)     # ...and beside three earlier turns it still fits


def test_a_long_conversation_counts_in_the_context_a_routing_rule_sizes(core):
    add_note(core, "Tomatoes go by the south wall this year.", "private", "Garden")
    long_answer = "The hedge trimmer " + "was oiled and stored in the garage, " * 20
    earlier = tuple((f"What happened to tool {i}?", long_answer) for i in range(3))
    with FakeLLMServer(models=["fake-model:1b", "fake-model:8b"], reply=Reply("By the south wall [1].")) as srv:
        cfg = parse_routing(rules(srv.url, "", """
[classes]
fast = ["local:fake-model:1b"]
general = ["local:fake-model:8b"]

[[rules]]
name = "long-conversation"
min_context_tokens = 900
class = "general"

[[rules]]
name = "short"
class = "fast"
"""))

        async def main(opts: AskOptions):
            async with ask_session(core, cfg=cfg, targets=(), embedded=None, timeouts=FAST) as p:
                return await p.run("Where do the tomatoes go?", opts, None)

        alone = asyncio.run(main(AskOptions(save=False, max_tokens=256)))
        following = asyncio.run(main(AskOptions(save=False, max_tokens=256, earlier=earlier)))
    assert (alone.route["rule"], alone.route["model"]) == ("short", "fake-model:1b"), alone.route
    assert following.route["model"] == "fake-model:8b", following.route
    assert following.route["rule"] == "long-conversation"


def test_only_a_short_follow_up_is_searched_with_the_question_it_follows():
    from deskmind.core.ask.conversation import elliptical_follow_up

    earlier = (("where is the spare key?", "Under the blue flower pot [1]."),)
    assert elliptical_follow_up("since when?", earlier) == "where is the spare key? since when?"
    assert elliptical_follow_up("What is the capital of Mongolia?", earlier) is None
    assert elliptical_follow_up("since when?", ()) is None
