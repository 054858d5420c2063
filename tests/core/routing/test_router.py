"""Routing decisions: rules, zones, privacy ceilings, override, availability, context size."""

from __future__ import annotations

from deskmind.core.routing.config import parse_routing
from deskmind.core.routing.router import (
    Inventory, ItemRef, ProviderState, RouteRequest, route_request,
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
