"""The routing rules file: parsed, validated, with errors that name the file, line and problem.

The file is TOML, meant to be edited by hand (``routing.toml`` in the config dir; the
documented defaults ship in ``resources/config/routing.toml``). Syntax errors come from
:mod:`tomllib`, which reports lines; for errors of meaning (an unknown zone, a rule naming a
missing class) the line of the offending key is found by scanning the text.
"""

from __future__ import annotations

import os
import logging
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deskmind.core.errors import UserInputError
from deskmind.core.memory.models import PRIVACY_LEVELS
from deskmind.core.routing.zones import ZONES, derive_zone, zone_rank
from deskmind.core.runtimes.kinds import RUNTIME_KINDS, RuntimeKinds

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
ON_PRIVATE = ("keep-local", "withhold")
FILENAME = "routing.toml"


class RoutingConfigError(UserInputError):
    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.problem = file, line, message


@dataclass
class ProviderConfig:
    name: str
    kind: str
    url: str
    zone: str
    key: str | None = None
    models: list[str] = field(default_factory=list)
    first_token_timeout: float | None = None
    stall_timeout: float | None = None
    discovered: bool = False
    # in-process kinds only (llamacpp): a GGUF file of the person's (default: the bundled Gemma 3 270M).
    model_path: str | None = None
    # False: kept in the file but never probed, discovered again or routed to.
    enabled: bool = True


@dataclass
class Rule:
    name: str
    klass: str = "general"
    zones: list[str] = field(default_factory=lambda: ["machine"])
    on_private: str = "keep-local"
    task: list[str] = field(default_factory=list)
    privacy_at_least: str | None = None
    privacy_at_most: str | None = None
    min_context_tokens: int | None = None
    max_context_tokens: int | None = None
    fallback: list[str] = field(default_factory=list)


@dataclass
class AgentConfig:
    name: str
    memory_ceiling: str | None = None  # None: may not read memory
    write_memory: bool = False
    read_paths: list[str] = field(default_factory=list)
    write_paths: list[str] = field(default_factory=list)
    shell: bool = False
    cloud: bool = False
    paste: bool = False
    delete: bool = False
    tools: list[str] = field(default_factory=list)


@dataclass
class RoutingConfig:
    source: str = "<defaults>"
    prompt_privacy: str = "private"
    cloud: bool = False
    discover: bool = True
    home_hosts: list[str] = field(default_factory=list)
    ceilings: dict[str, str] = field(default_factory=lambda: {
        "machine": "secret", "home": "private", "cloud": "public"})
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    classes: dict[str, list[str]] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    agents: dict[str, AgentConfig] = field(default_factory=dict)


def privacy_rank(tag: str) -> int:
    return PRIVACY_LEVELS.index(tag)


# -- loading ---------------------------------------------------------------------------


def default_text() -> str:
    return resources.files("deskmind.resources").joinpath("config", FILENAME).read_text("utf-8")


def load_routing(config_dir: Path | None) -> RoutingConfig:
    """The person's rules when ``config_dir/routing.toml`` exists, else the shipped defaults."""
    if config_dir is not None:
        path = Path(config_dir) / FILENAME
        if path.exists():
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
            return _with_chosen_model(parse_routing(text, str(path)), config_dir)
    return _with_chosen_model(parse_routing(default_text(), "<built-in routing.toml>"), config_dir)


def _with_chosen_model(cfg: RoutingConfig, config_dir: Path | None) -> RoutingConfig:
    """Hook for the model library: an embedded llamacpp provider without its own model_path
    loads the GGUF chosen for the 'general' class (``deskmind models use FILE``)."""
    if config_dir is None:
        return cfg
    from deskmind.core.models.choice import chosen_model_in

    chosen = chosen_model_in(Path(config_dir), "general")
    if chosen is not None:
        for prov in cfg.providers.values():
            if prov.kind in RUNTIME_KINDS and RUNTIME_KINDS.get(prov.kind).in_process \
                    and not prov.model_path:
                prov.model_path = str(chosen)
    return cfg


def parse_routing(text: str, file: str = "routing.toml",
                  kinds: RuntimeKinds | None = None) -> RoutingConfig:
    """The rules in ``text``; provider kinds are checked against ``kinds`` (default: the
    registered runtime kinds)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise RoutingConfigError(file, int(m.group(1)) if m else 1, f"not valid TOML: {exc}") from None
    return _Validator(text, file, kinds or RUNTIME_KINDS).build(data)


class _Validator:
    def __init__(self, text: str, file: str, kinds: RuntimeKinds) -> None:
        self.lines = text.splitlines()
        self.file = file
        self.kinds = kinds

    def fail(self, path: tuple, message: str) -> RoutingConfigError:
        return RoutingConfigError(self.file, locate(self.lines, path), message)

    def _known(self, table: dict, allowed: set[str], path: tuple) -> None:
        for k in table:
            if k not in allowed:
                raise self.fail(path + (k,), f"unknown key '{k}' in {_where(path)} "
                                f"(expected one of: {', '.join(sorted(allowed))})")

    def _type(self, value: Any, typ: type | tuple, path: tuple, what: str) -> Any:
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise self.fail(path, f"{_where(path)} must be {what}, not {type(value).__name__} {value!r}")
        return value

    def _str_list(self, value: Any, path: tuple) -> list[str]:
        if isinstance(value, str):
            return [value]
        self._type(value, list, path, "a list of strings")
        for v in value:
            self._type(v, str, path, "a list of strings")
        return list(value)

    def _privacy(self, value: Any, path: tuple) -> str:
        self._type(value, str, path, "a privacy tag")
        if value not in PRIVACY_LEVELS:
            raise self.fail(path, f"unknown privacy tag '{value}' in {_where(path)} "
                            f"(expected one of: {', '.join(PRIVACY_LEVELS)})")
        return value

    def _zone(self, value: Any, path: tuple) -> str:
        self._type(value, str, path, "a zone name")
        if value not in ZONES:
            raise self.fail(path, f"unknown zone '{value}' in {_where(path)} "
                            f"(expected one of: {', '.join(ZONES)})")
        return value

    def build(self, d: dict) -> RoutingConfig:
        self._known(d, {"schema_version", "defaults", "zones", "providers", "classes", "rules",
                        "agents"}, ())
        version = d.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise self.fail(("schema_version",), f"schema_version {version} is not supported "
                            f"(this Deskmind reads {SCHEMA_VERSION})")
        cfg = RoutingConfig(source=self.file)
        defaults = self._type(d.get("defaults", {}), dict, ("defaults",), "a table")
        self._known(defaults, {"prompt_privacy", "cloud", "discover"}, ("defaults",))
        if "prompt_privacy" in defaults:
            cfg.prompt_privacy = self._privacy(defaults["prompt_privacy"], ("defaults", "prompt_privacy"))
        cfg.cloud = self._type(defaults.get("cloud", False), bool, ("defaults", "cloud"), "true or false")
        cfg.discover = self._type(defaults.get("discover", True), bool, ("defaults", "discover"), "true or false")

        zones = self._type(d.get("zones", {}), dict, ("zones",), "a table")
        self._known(zones, {"home_hosts", "ceiling"}, ("zones",))
        cfg.home_hosts = self._str_list(zones.get("home_hosts", []), ("zones", "home_hosts"))
        ceil = self._type(zones.get("ceiling", {}), dict, ("zones", "ceiling"), "a table")
        for z, tag in ceil.items():
            self._zone(z, ("zones", "ceiling", z))
            cfg.ceilings[z] = self._privacy(tag, ("zones", "ceiling", z))
        for a, b in (("machine", "home"), ("home", "cloud")):
            if privacy_rank(cfg.ceilings[b]) > privacy_rank(cfg.ceilings[a]):
                raise self.fail(("zones", "ceiling", b), f"the {b} zone may not receive more "
                                f"sensitive material ({cfg.ceilings[b]}) than the {a} zone ({cfg.ceilings[a]})")

        for name, p in self._type(d.get("providers", {}), dict, ("providers",), "a table").items():
            cfg.providers[name] = self._provider(name, p, cfg)

        for cname, cands in self._type(d.get("classes", {}), dict, ("classes",), "a table").items():
            lst = self._str_list(cands, ("classes", cname))
            for c in lst:
                self._candidate(c, cfg, ("classes", cname))
            cfg.classes[cname] = lst
        for cname in ("general", "fast", "coder", "embed"):
            cfg.classes.setdefault(cname, ["auto"])

        rules = self._type(d.get("rules", []), list, ("rules",), "an array of [[rules]] tables")
        seen: set[str] = set()
        for i, r in enumerate(rules):
            rule = self._rule(i, r, cfg)
            if rule.name in seen:
                raise self.fail(("rules", i, "name"), f"two rules are named '{rule.name}'")
            seen.add(rule.name)
            cfg.rules.append(rule)
        if not cfg.rules:
            cfg.rules.append(Rule(name="built-in-local", zones=["machine"]))

        for aname, a in self._type(d.get("agents", {}), dict, ("agents",), "a table").items():
            cfg.agents[aname] = self._agent(aname, a)
        return cfg

    def _provider(self, name: str, p: Any, cfg: RoutingConfig) -> ProviderConfig:
        path = ("providers", name)
        self._type(p, dict, path, "a table")
        self._known(p, {"kind", "url", "zone", "key", "models", "first_token_timeout", "stall_timeout",
                          "model_path", "enabled"}, path)
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            raise self.fail(path, f"provider name '{name}' may only use letters, digits, . _ -")
        kinds = self.kinds.names()
        kind = self._type(p.get("kind"), str, path + ("kind",), f"one of {', '.join(kinds)}")
        if kind not in kinds:
            raise self.fail(path + ("kind",), f"unknown provider kind '{kind}' (expected one of: {', '.join(kinds)})")
        in_process = self.kinds.get(kind).in_process
        url = p.get("url", "")
        if not in_process:
            self._type(url, str, path + ("url",), "a URL")
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise self.fail(path + ("url",), f"'{url}' is not an http(s) URL")
        derived = derive_zone(url, cfg.home_hosts) if not in_process else "machine"
        zone = self._zone(p["zone"], path + ("zone",)) if "zone" in p else derived
        if zone_rank(zone) < zone_rank(derived):
            hint = " (list the host in zones.home_hosts to trust it)" if zone == "home" else ""
            raise self.fail(path + ("zone",), f"provider '{name}' at {urlsplit(url).hostname} is in "
                            f"the {derived} zone and cannot be declared '{zone}'{hint}")
        prov = ProviderConfig(name=name, kind=kind, url=url, zone=zone,
                              key=self._type(p["key"], str, path + ("key",), "a keyring entry name") if "key" in p else None,
                              models=self._str_list(p.get("models", []), path + ("models",)),
                              enabled=self._type(p.get("enabled", True), bool, path + ("enabled",), "true or false"))
        if "model_path" in p:
            if not in_process:
                local = " or ".join(k.name for k in self.kinds if k.in_process)
                raise self.fail(path + ("model_path",), f"model_path is for {local} providers (a "
                                f"GGUF file run in-process); a {kind} server chooses its own model files")
            mp = self._type(p["model_path"], str, path + ("model_path",), "the path of a GGUF file")
            prov.model_path = os.path.expanduser(mp)
        for k in ("first_token_timeout", "stall_timeout"):
            if k in p:
                v = self._type(p[k], (int, float), path + (k,), "a number of seconds")
                if v <= 0:
                    raise self.fail(path + (k,), f"{k} must be above 0")
                setattr(prov, k, float(v))
        return prov

    def _candidate(self, c: str, cfg: RoutingConfig, path: tuple) -> None:
        if c == "auto" or c.startswith("class:"):
            return
        prov = c.split(":", 1)[0]
        if prov not in cfg.providers and prov not in ("embedded",):
            raise self.fail(path, f"'{c}' in {_where(path)} names provider '{prov}', which is not "
                            "declared under [providers]")

    def _rule(self, i: int, r: Any, cfg: RoutingConfig) -> Rule:
        path = ("rules", i)
        self._type(r, dict, path, "a table")
        self._known(r, {"name", "task", "privacy_at_least", "privacy_at_most", "min_context_tokens",
                        "max_context_tokens", "class", "zones", "on_private", "fallback"}, path)
        if "name" not in r:
            raise self.fail(path, f"rule number {i + 1} has no name")
        rule = Rule(name=self._type(r["name"], str, path + ("name",), "a string"))
        rule.task = self._str_list(r.get("task", []), path + ("task",))
        for k in ("privacy_at_least", "privacy_at_most"):
            if k in r:
                setattr(rule, k, self._privacy(r[k], path + (k,)))
        for k in ("min_context_tokens", "max_context_tokens"):
            if k in r:
                setattr(rule, k, self._type(r[k], int, path + (k,), "a whole number"))
        rule.klass = self._type(r.get("class", "general"), str, path + ("class",), "a class name")
        if rule.klass not in cfg.classes:
            raise self.fail(path + ("class",), f"rule '{rule.name}' uses class '{rule.klass}', which "
                            f"is not defined (defined: {', '.join(sorted(cfg.classes))})")
        rule.zones = [self._zone(z, path + ("zones",)) for z in self._str_list(r.get("zones", ["machine"]), path + ("zones",))]
        if not rule.zones:
            raise self.fail(path + ("zones",), f"rule '{rule.name}' allows no zone at all")
        rule.on_private = self._type(r.get("on_private", "keep-local"), str, path + ("on_private",), "a string")
        if rule.on_private not in ON_PRIVATE:
            raise self.fail(path + ("on_private",), f"on_private must be one of: {', '.join(ON_PRIVATE)}")
        rule.fallback = self._str_list(r.get("fallback", []), path + ("fallback",))
        for c in rule.fallback:
            self._candidate(c, cfg, path + ("fallback",))
            if c.startswith("class:") and c[6:] not in cfg.classes:
                raise self.fail(path + ("fallback",), f"fallback '{c}' names an undefined class")
        return rule

    def _agent(self, name: str, a: Any) -> AgentConfig:
        path = ("agents", name)
        self._type(a, dict, path, "a table")
        self._known(a, {"memory_ceiling", "write_memory", "read_paths", "write_paths", "shell",
                        "cloud", "paste", "delete", "tools"}, path)
        ag = AgentConfig(name=name)
        if "memory_ceiling" in a:
            v = a["memory_ceiling"]
            ag.memory_ceiling = None if v == "none" else self._privacy(v, path + ("memory_ceiling",))
        for k in ("write_memory", "shell", "cloud", "paste", "delete"):
            if k in a:
                setattr(ag, k, self._type(a[k], bool, path + (k,), "true or false"))
        for k in ("read_paths", "write_paths", "tools"):
            if k in a:
                setattr(ag, k, self._str_list(a[k], path + (k,)))
        return ag


def _where(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out or "the top level"


def locate(lines: list[str], path: tuple) -> int:
    """1-based line of ``path``'s key in a TOML text; failing that, of the nearest enclosing
    table header or key. 1 if nothing matches."""
    header_re = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    key_re = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")
    table: tuple = ()
    counts: dict[tuple, int] = {}
    best, best_len = 1, 0
    for n, line in enumerate(lines, 1):
        m = header_re.match(line)
        if m:
            names = tuple(x.strip().strip("\"'") for x in m.group(2).split("."))
            if m.group(1) == "[[":
                counts[names] = counts.get(names, -1) + 1
                table = names + (counts[names],)
            else:
                table = names
            if path[:len(table)] == table and len(table) > best_len:
                best, best_len = n, len(table)
            continue
        m = key_re.match(line)
        if m:
            full = table + (m.group(1).strip("\"'"),)
            if full == path:
                return n
            if path[:len(full)] == full and len(full) > best_len:
                best, best_len = n, len(full)
    return best
