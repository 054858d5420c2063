"""The rules file: defaults, and precise errors (file, line, what is wrong)."""

from __future__ import annotations

import pytest

from deskmind.core.routing.config import RoutingConfigError, load_routing, parse_routing

BASE = """\
schema_version = 1

[defaults]
cloud = true

[providers.box]
kind = "ollama"
url = "http://127.0.0.1:11434"

[classes]
general = ["box:llama3.2"]

[[rules]]
name = "a"
zones = ["machine"]

[[rules]]
name = "b"
class = "general"
zones = ["machine", "home"]
"""


def err(text: str) -> RoutingConfigError:
    with pytest.raises(RoutingConfigError) as ei:
        parse_routing(text, "/cfg/routing.toml")
    return ei.value


def test_defaults_are_local_and_cloud_off(tmp_path):
    cfg = load_routing(tmp_path)  # no file: the shipped defaults
    assert cfg.cloud is False and cfg.prompt_privacy == "private"
    assert cfg.ceilings == {"machine": "secret", "home": "private", "cloud": "public"}
    assert all("cloud" not in r.zones for r in cfg.rules)
    assert cfg.agents["quick-ask"].shell is False
    (tmp_path / "routing.toml").write_text(BASE)
    assert load_routing(tmp_path).cloud is True


def test_syntax_error_has_line():
    e = err(BASE.replace('name = "b"', 'name = "b'))
    assert e.file == "/cfg/routing.toml" and e.line == 18 and "not valid TOML" in str(e)
    assert str(e).startswith("/cfg/routing.toml:18: ")


def test_unknown_zone_points_at_the_zones_line():
    e = err(BASE.replace('zones = ["machine", "home"]', 'zones = ["machine", "moon"]'))
    assert e.line == 20 and "unknown zone 'moon'" in str(e)


def test_undefined_class_points_at_class_line():
    e = err(BASE.replace('class = "general"', 'class = "poetry"'))
    assert e.line == 19 and "class 'poetry'" in str(e) and "general" in str(e)


def test_unknown_key_and_bad_type():
    e = err(BASE.replace('kind = "ollama"', 'kind = "ollama"\nspeed = 3'))
    assert e.line == 8 and "unknown key 'speed'" in str(e)
    e = err(BASE.replace("cloud = true", 'cloud = "yes"'))
    assert e.line == 4 and "true or false" in str(e)


def test_zone_cannot_be_more_trusted_than_the_host():
    text = BASE + '\n[providers.far]\nkind = "openai"\nurl = "https://api.example.com"\nzone = "home"\n'
    e = err(text)
    assert e.line == text.splitlines().index('zone = "home"') + 1
    assert "cloud zone" in str(e) and "home_hosts" in str(e)
    # a loopback server may be declared less trusted (used by the privacy tests)
    ok = parse_routing(BASE + '\n[providers.fake]\nkind = "openai"\nurl = "http://127.0.0.1:9"\nzone = "cloud"\n')
    assert ok.providers["fake"].zone == "cloud"


def test_candidate_must_name_a_declared_provider():
    e = err(BASE.replace('general = ["box:llama3.2"]', 'general = ["nowhere:llama3.2"]'))
    assert e.line == 11 and "nowhere" in str(e)


def test_ceilings_must_not_grow_outward():
    e = err(BASE + '\n[zones.ceiling]\ncloud = "secret"\n')
    assert "cloud zone may not receive more" in str(e) and e.line == len(BASE.splitlines()) + 3


def test_duplicate_rule_names():
    e = err(BASE.replace('name = "b"', 'name = "a"'))
    assert e.line == 18 and "two rules are named 'a'" in str(e)
