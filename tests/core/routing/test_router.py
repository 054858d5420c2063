"""Routing decisions: rules, zones, privacy ceilings, override, availability, context size."""

from __future__ import annotations

from deskmind.core.routing.config import parse_routing
import pytest

from deskmind.core.routing.router import (
    Inventory, ItemRef, ProviderState, RouteRefused, RouteRequest, UnknownModel, keep_off_cloud,
    route_request,
)

RULES = """\
[defaults]
cloud = true

[zones]
home_hosts = ["gpu.lan"]

[providers.local]
kind = "ollama"
url = "http://127.0.0.1:11434"

[providers.gpu]
kind = "ollama"
url = "http://gpu.lan:11434"

[providers.sky]
kind = "openai"
url = "https://api.example.com"

[classes]
general = ["auto"]
big = ["gpu:qwen:32b", "sky:gpt-x"]

[[rules]]
name = "secret-local"
privacy_at_least = "secret"
zones = ["machine"]

[[rules]]
name = "long-context"
min_context_tokens = 20000
class = "big"
zones = ["home", "cloud"]
on_private = "withhold"

[[rules]]
name = "public-cloud"
task = ["summarize"]
class = "big"
zones = ["cloud"]
on_private = "keep-local"

[[rules]]
name = "default"
zones = ["machine", "home"]
fallback = ["gpu:qwen:32b"]
"""


def inv(local_up=True) -> Inventory:
    return Inventory({
        "local": ProviderState("local", "machine", local_up, ["llama3.2:3b", "nomic-embed-text"], ["llama3.2:3b"]),
        "gpu": ProviderState("gpu", "home", True, []),
        "sky": ProviderState("sky", "cloud", True, []),
    })


def test_default_picks_the_local_model_then_home_fallback():
    d = route_request(parse_routing(RULES), inv(), RouteRequest("hello"))
    assert d.rule == "default"
    assert [c.ref for c in d.candidates] == ["local:llama3.2:3b", "gpu:qwen:32b"]
    assert d.candidates[0].zone == "machine" and "local:llama3.2:3b" in d.reason


def test_unavailable_local_falls_to_home_never_cloud():
    d = route_request(parse_routing(RULES), inv(local_up=False), RouteRequest("hello"))
    assert [c.ref for c in d.candidates] == ["gpu:qwen:32b"]
    assert all(c.zone != "cloud" for c in d.candidates)


def test_secret_material_stays_on_machine():
    items = [ItemRef(1, "public"), ItemRef(2, "secret")]
    d = route_request(parse_routing(RULES), inv(), RouteRequest("q", prompt_privacy="public", items=items))
    assert d.rule == "secret-local" and d.privacy == "secret"
    assert {c.zone for c in d.candidates} == {"machine"}


def test_keep_local_drops_zones_that_may_not_see_items():
    cfg = parse_routing(RULES)
    items = [ItemRef(1, "public"), ItemRef(2, "private")]
    d = route_request(cfg, inv(), RouteRequest("q", task="summarize", prompt_privacy="public", items=items))
    assert d.rule == "public-cloud" and d.candidates == []
    assert any("keeps them local" in s for s in d.skipped)
    d = route_request(cfg, inv(), RouteRequest("q", task="summarize", prompt_privacy="public",
                                               items=[ItemRef(1, "public")]))
    assert [c.ref for c in d.candidates] == ["sky:gpt-x"]


def test_withhold_leaves_out_items_above_each_zone_ceiling():
    cfg = parse_routing(RULES)
    items = [ItemRef(1, "public", 30000), ItemRef(2, "personal", 30000), ItemRef(3, "private", 10)]
    d = route_request(cfg, inv(), RouteRequest("q", prompt_privacy="public", items=items))
    assert d.rule == "long-context"
    by = {c.ref: c for c in d.candidates}
    assert by["gpu:qwen:32b"].withheld == []          # home ceiling: private
    assert by["sky:gpt-x"].withheld == [2, 3]         # cloud ceiling: public


def test_private_prompt_never_reaches_cloud_even_by_override():
    cfg = parse_routing(RULES)
    d = route_request(cfg, inv(), RouteRequest("q", override="sky:gpt-x"))
    assert d.candidates == [] and "ceiling" in d.skipped[0]
    d = route_request(cfg, inv(), RouteRequest("q", override="sky:gpt-x", prompt_privacy="public"))
    assert [c.ref for c in d.candidates] == ["sky:gpt-x"] and d.candidates[0].origin == "explicit choice"


def test_an_outside_callers_model_choice_stays_within_the_rules_zones():
    cfg = parse_routing(RULES)
    # A person's own choice replaces the rule's zones (the "default" rule allows no cloud)...
    d = route_request(cfg, inv(), RouteRequest("q", override="sky:gpt-x", prompt_privacy="public"))
    assert d.rule == "default" and [c.ref for c in d.candidates] == ["sky:gpt-x"]
    # ... a client's choice does not: it is refused, naming the rule and its zones.
    with pytest.raises(RouteRefused, match=r"sky:gpt-x runs in the cloud zone, which rule 'default' "
                                           r"does not allow .*\(it allows: machine, home\)"):
        route_request(cfg, inv(), RouteRequest("q", override="sky:gpt-x", prompt_privacy="public",
                                                override_within_rule=True))
    # Inside the rule's zones the choice is kept, with the rule named in the reason.
    d = route_request(cfg, inv(), RouteRequest("q", override="gpu:qwen:32b", override_within_rule=True))
    assert [c.ref for c in d.candidates] == ["gpu:qwen:32b"] and "within rule default" in d.reason
    # A model nobody lists is not a refusal: it is unknown (a 404 at the gateway).
    with pytest.raises(UnknownModel, match="no runtime has a model named 'nope'") as err:
        route_request(cfg, inv(), RouteRequest("q", override="nope", override_within_rule=True))
    assert not isinstance(err.value, RouteRefused)
    # The cloud switch is a refusal too.
    off = parse_routing(RULES.replace("cloud = true", "cloud = false"))
    with pytest.raises(RouteRefused, match="switched off"):
        route_request(off, inv(), RouteRequest("q", task="summarize", prompt_privacy="public",
                                                override="sky:gpt-x", override_within_rule=True))


def test_a_caller_without_the_cloud_scope_loses_cloud_candidates():
    cfg = parse_routing(RULES)
    items = [ItemRef(1, "public", 60000)]  # long: the "long-context" rule (home, cloud)
    d = route_request(cfg, inv(), RouteRequest("q", prompt_privacy="public", items=items))
    assert d.rule == "long-context" and "sky:gpt-x" in [c.ref for c in d.candidates]
    keep_off_cloud(d, "client x")
    assert [c.ref for c in d.candidates] == ["gpu:qwen:32b"]
    assert any("client x may not reach the cloud zone" in s for s in d.skipped)
    d = route_request(cfg, inv(), RouteRequest("q", task="summarize", prompt_privacy="public",
                                               override="sky:gpt-x", override_within_rule=True))
    with pytest.raises(RouteRefused, match="which client x may not reach \\(rule 'public-cloud'\\)"):
        keep_off_cloud(d, "client x", "sky:gpt-x")


def test_cloud_switch_off_beats_every_rule():
    cfg = parse_routing(RULES.replace("cloud = true", "cloud = false"))
    d = route_request(cfg, inv(), RouteRequest("q", task="summarize", prompt_privacy="public"))
    assert d.candidates == [] and any("switched off" in s for s in d.skipped)


def test_override_by_model_name_and_embed_class():
    cfg = parse_routing(RULES)
    d = route_request(cfg, inv(), RouteRequest("q", override="nomic-embed-text"))
    assert [c.ref for c in d.candidates] == ["local:nomic-embed-text"]
    assert inv().machine_auto("embed") == [("local", "nomic-embed-text")]


def test_model_window_too_small_is_skipped():
    cfg = parse_routing(RULES)
    i = inv()
    i.providers["local"].context["llama3.2:3b"] = 2048
    d = route_request(cfg, i, RouteRequest("x" * 9000))
    assert [c.ref for c in d.candidates] == ["gpu:qwen:32b"]
    assert any("window is 2048" in s for s in d.skipped)


def test_a_window_need_only_hold_what_the_caller_cannot_cut():
    cfg = parse_routing(RULES)
    i = inv()
    i.providers["local"].context["llama3.2:3b"] = 2048
    items = [ItemRef(n, "public", 3000) for n in range(3)]   # ~3,000 tokens of passages
    whole = route_request(cfg, i, RouteRequest("q", items=items, answer_tokens=256))
    assert "local:llama3.2:3b" not in [c.ref for c in whole.candidates]
    # Cut to a sentence each, the passages fit; the rule still sees the whole context.
    cut = route_request(cfg, i, RouteRequest("q", items=items, answer_tokens=256, items_cut_to=120))
    assert "local:llama3.2:3b" in [c.ref for c in cut.candidates]
    assert cut.context_tokens == whole.context_tokens == 9001 // 3 + 256
    # What cannot be cut (a long conversation sent with the question) still has to fit.
    long = route_request(cfg, i, RouteRequest("q" * 6000, items=items, answer_tokens=256, items_cut_to=120))
    assert "local:llama3.2:3b" not in [c.ref for c in long.candidates]
    assert any("llama3.2:3b: needs ~2376 tokens, model window is 2048" in s for s in long.skipped)
