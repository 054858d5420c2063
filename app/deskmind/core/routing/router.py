"""Per-request routing: which rule applies, which models may answer, what each may see.

Pure and synchronous: given the rules, what is running now (an :class:`Inventory`) and the
request, :func:`route_request` returns ordered candidates, each with the memory items it must
not receive. Privacy is enforced here, once, for every path: a zone never gets a prompt or an
item above its ceiling, and no candidate is ever in the cloud zone unless the cloud switch is
on and the rule (or the person's explicit choice) names the cloud.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from deskmind.core.errors import DeskmindError
from deskmind.core.routing.config import RoutingConfig, Rule, privacy_rank

log = logging.getLogger(__name__)


class RoutingError(DeskmindError):
    exit_code = 7


class RouteRefused(RoutingError):
    """A named model may not take this request under the rules (its zone, the cloud switch, or
    the caller's scopes): a refusal, not a runtime being down."""


class UnknownModel(RoutingError):
    """A model named by the caller that no runtime has (every runtime that could was asked)."""


@dataclass
class ItemRef:
    """A memory item considered for the prompt: its chunk id, privacy tag and size."""

    id: int
    privacy: str
    chars: int = 0


@dataclass
class ProviderState:
    name: str
    zone: str
    available: bool
    models: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    context: dict[str, int] = field(default_factory=dict)  # model -> context window
    kind: str = ""
    note: str = ""
    url: str = ""   # where a server answers (empty for the in-process runtime)


@dataclass
class Inventory:
    """What can answer right now, in preference order (configured, then discovered)."""

    providers: dict[str, ProviderState] = field(default_factory=dict)

    def machine_auto(self, klass: str) -> list[tuple[str, str]]:
        out = []
        for p in self.providers.values():
            if p.zone != "machine" or not p.available or not p.models:
                continue
            ms = _auto_pick(p, klass)
            out.extend((p.name, m) for m in ms[:1])
        return out


@dataclass
class RouteRequest:
    prompt: str
    task: str = "ask"
    prompt_privacy: str | None = None
    items: Sequence[ItemRef] = ()
    override: str | None = None
    # An outside caller's model choice stays inside the matched rule's zones; a person's own
    # choice (deskmind ask --model) replaces the rule's candidates and zones.
    override_within_rule: bool = False
    answer_tokens: int = 1024
    # When the caller cuts the items to the chosen model's window (the ask pipeline does,
    # keeping about this many characters of each), a window need only hold that much of each.
    items_cut_to: int | None = None


@dataclass
class Candidate:
    provider: str
    model: str
    zone: str
    origin: str
    withheld: list[int] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass
class RouteDecision:
    rule: str
    klass: str
    reason: str
    privacy: str
    context_tokens: int
    candidates: list[Candidate]
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "class": self.klass, "reason": self.reason,
                "privacy": self.privacy, "context_tokens": self.context_tokens,
                "candidates": [{"provider": c.provider, "model": c.model, "zone": c.zone,
                                "origin": c.origin, "withheld_items": c.withheld}
                               for c in self.candidates],
                "skipped": self.skipped}


def strictest(tags: Sequence[str]) -> str:
    return max(tags, key=privacy_rank) if tags else "public"


def estimate_context(prompt_chars: int, item_chars: Sequence[int], answer_tokens: int) -> int:
    return (prompt_chars + sum(item_chars)) // 3 + answer_tokens


def match_rule(cfg: RoutingConfig, task: str, privacy: str, ctx: int) -> tuple[Rule, str]:
    for rule in cfg.rules:
        why = []
        if rule.task:
            if task not in rule.task:
                continue
            why.append(f"task is {task}")
        if rule.privacy_at_least and privacy_rank(privacy) < privacy_rank(rule.privacy_at_least):
            continue
        if rule.privacy_at_least:
            why.append(f"material is {privacy} (at least {rule.privacy_at_least})")
        if rule.privacy_at_most and privacy_rank(privacy) > privacy_rank(rule.privacy_at_most):
            continue
        if rule.privacy_at_most:
            why.append(f"material is {privacy} (at most {rule.privacy_at_most})")
        if rule.min_context_tokens is not None and ctx < rule.min_context_tokens:
            continue
        if rule.max_context_tokens is not None and ctx > rule.max_context_tokens:
            continue
        if rule.min_context_tokens is not None or rule.max_context_tokens is not None:
            why.append(f"~{ctx} tokens of context")
        return rule, ("; ".join(why) or "no condition (catch-all)")
    raise RoutingError(f"no routing rule matches this request (task {task}, {privacy} material); "
                       f"add a catch-all rule at the end of {cfg.source}")


def route_request(cfg: RoutingConfig, inv: Inventory, req: RouteRequest) -> RouteDecision:
    prompt_priv = req.prompt_privacy or cfg.prompt_privacy
    privacy = strictest([prompt_priv, *[i.privacy for i in req.items]])
    ctx = estimate_context(len(req.prompt), [i.chars for i in req.items], req.answer_tokens)
    least = ctx if req.items_cut_to is None else estimate_context(
        len(req.prompt), [min(i.chars, req.items_cut_to) for i in req.items], req.answer_tokens)
    rule, why = match_rule(cfg, req.task, privacy, ctx)
    skipped: list[str] = []

    if req.override:
        raw = _override_candidates(req.override, inv, skipped)
        if req.override_within_rule:
            allowed_zones = rule.zones
            head = f"override {req.override} within rule {rule.name}: {why}"
        else:
            allowed_zones = ["machine", "home", "cloud"]
            head = f"override {req.override}"
    else:
        raw = _expand(cfg, inv, cfg.classes.get(rule.klass, ["auto"]), rule.klass, f"class {rule.klass}", set())
        for fb in rule.fallback:
            if fb.startswith("class:"):
                raw += _expand(cfg, inv, cfg.classes.get(fb[6:], []), fb[6:], f"fallback {fb}", set())
            else:
                raw += _expand(cfg, inv, [fb], rule.klass, "fallback", set())
        allowed_zones = rule.zones
        head = f"rule {rule.name}: {why}"

    out: list[Candidate] = []
    refused: list[str] = []  # override candidates the rules forbid (as opposed to unavailable)
    seen: set[tuple[str, str]] = set()
    for prov, model, origin in raw:
        if (prov, model) in seen:
            continue
        seen.add((prov, model))
        st = inv.providers.get(prov)
        if st is None:
            skipped.append(f"{prov}:{model}: provider not configured")
            continue
        zone = st.zone
        if zone not in allowed_zones:
            skipped.append(f"{prov}:{model}: {zone} zone not allowed by rule {rule.name}")
            refused.append(f"{prov}:{model} runs in the {zone} zone, which rule '{rule.name}' "
                           f"does not allow for this request (it allows: {', '.join(rule.zones)})")
            continue
        if zone == "cloud" and not cfg.cloud:
            skipped.append(f"{prov}:{model}: cloud is switched off ([defaults] cloud = false)")
            refused.append(f"{prov}:{model} is in the cloud zone and the cloud is switched off "
                           "([defaults] cloud = false)")
            continue
        if not st.available:
            skipped.append(f"{prov}:{model}: {st.note or 'not available'}")
            continue
        if st.models and model not in st.models:
            skipped.append(f"{prov}:{model}: {prov} has no such model")
            continue
        ceiling = cfg.ceilings[zone]
        if privacy_rank(prompt_priv) > privacy_rank(ceiling):
            skipped.append(f"{prov}:{model}: the prompt is {prompt_priv}, above the {zone} zone's ceiling ({ceiling})")
            continue
        over = [i.id for i in req.items if privacy_rank(i.privacy) > privacy_rank(ceiling)]
        if over and rule.on_private == "keep-local":
            skipped.append(f"{prov}:{model}: {len(over)} memory item(s) above the {zone} zone's "
                           f"ceiling ({ceiling}) and rule {rule.name} keeps them local")
            continue
        window = st.context.get(model)
        if window and window < least:
            skipped.append(f"{prov}:{model}: needs ~{least} tokens, model window is {window}")
            continue
        out.append(Candidate(prov, model, zone, origin, withheld=over))
    if req.override and not out and not refused and _nobody_has(req.override, inv, raw, skipped):
        classes = ", ".join(c for c in cfg.classes if c != "embed")
        raise UnknownModel(f"no runtime has a model named '{req.override}': ask for a class "
                           f"({classes}) or a provider:model that 'deskmind models' lists")
    if req.override and req.override_within_rule and not out and refused:
        raise RouteRefused(f"model '{req.override}' may not answer this request: "
                           + "; ".join(refused)
                           + f". Ask for a class such as '{rule.klass}' to let the rules choose")
    if out:
        c = out[0]
        reason = f"{head}; {c.ref} ({c.zone}, {c.origin})"
        if c.withheld:
            reason += f"; {len(c.withheld)} item(s) withheld above the {c.zone} ceiling"
    else:
        reason = f"{head}; no candidate can take it"
    return RouteDecision(rule=rule.name, klass=rule.klass, reason=reason, privacy=privacy,
                         context_tokens=ctx, candidates=out, skipped=skipped)


def keep_off_cloud(d: RouteDecision, who: str, refuse_override: str | None = None) -> None:
    """Drop the cloud candidates of a caller without the cloud scope (``who`` names it in the
    reasons). With ``refuse_override``, an outside caller's model choice that only the cloud
    could take is refused outright instead of ending as "no candidate"."""
    cloud = [c for c in d.candidates if c.zone == "cloud"]
    if not cloud:
        return
    d.skipped += [f"{c.ref}: {who} may not reach the cloud zone" for c in cloud]
    d.candidates = [c for c in d.candidates if c.zone != "cloud"]
    if refuse_override and not d.candidates:
        raise RouteRefused(f"model '{refuse_override}' runs in the cloud zone, which {who} may "
                           f"not reach (rule '{d.rule}'); ask for a class such as '{d.klass}' "
                           "to let the rules choose")


def _expand(cfg: RoutingConfig, inv: Inventory, entries: list[str], klass: str, origin: str,
            seen_classes: set[str]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for e in entries:
        if e == "auto":
            out += [(p, m, f"{origin}, auto") for p, m in inv.machine_auto(klass)]
        elif e.startswith("class:"):
            name = e[6:]
            if name not in seen_classes:
                seen_classes.add(name)
                out += _expand(cfg, inv, cfg.classes.get(name, []), name, f"{origin} -> {e}", seen_classes)
        else:
            prov, _, model = e.partition(":")
            if not model:
                st = inv.providers.get(prov)
                picked = _auto_pick(st, klass)[:1] if st else []
                model = picked[0] if picked else "?"
            out.append((prov, model, origin))
    return out


def _auto_pick(p: ProviderState, klass: str) -> list[str]:
    embed = [m for m in p.models if "embed" in m.lower()]
    chat = [m for m in p.models if m not in embed]
    if klass == "embed":
        return embed
    return sorted(chat, key=lambda m: m not in p.loaded)


def _nobody_has(spec: str, inv: Inventory, raw: list[tuple[str, str, str]],
               skipped: list[str]) -> bool:
    """True when no runtime lists the model and none could have it unlisted (one that is down
    and whose models are unknown might: that is "not running", not "no such model")."""
    if any(not p.available and not p.models for p in inv.providers.values()):
        return False
    return not raw or all(f"{p}:{m}: {p} has no such model" in skipped for p, m, _ in raw)


def _override_candidates(spec: str, inv: Inventory, skipped: list[str]) -> list[tuple[str, str, str]]:
    prov, sep, model = spec.partition(":")
    if sep and prov in inv.providers:
        return [(prov, model, "explicit choice")]
    found = [(p.name, spec, "explicit choice") for p in
             sorted(inv.providers.values(), key=lambda p: ("machine", "home", "cloud").index(p.zone))
             if spec in p.models]
    if not found:
        skipped.append(f"{spec}: no available provider lists this model")
    return found
