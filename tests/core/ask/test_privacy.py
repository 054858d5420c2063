"""Privacy: a loopback server declared as the cloud zone receives exactly what the rules allow,
never a private item, and the egress ledger matches what it received byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from deskmind.core.ask.pipeline import AskOptions
from deskmind.core.ask.session import ask_session
from deskmind.core.routing.config import parse_routing
from deskmind.core.routing.ledger import EgressLedger
from deskmind.core.secrets import SecretStore
from tests.core.ask.conftest import FAST, add_note
from tests.fakes.llm_server import FakeLLMServer, Reply

KEY = "sk-cloudtest-0123456789abcdef"


def ledger_probe(store):
    """For the fake server's on_receive: did the ledger already hold a committed ``sending``
    row for exactly these bytes when they arrived? Read on the server thread's own connection,
    so only what was committed counts."""
    def probe(received) -> bool | None:
        if not received.body:
            return None
        return store.sql.query_one(
            "SELECT count(*) FROM egress_ledger WHERE body_sha256 = ? AND bytes_out = ? "
            "AND status = 'sending'", (received.sha256, len(received.body)))[0] == 1
    return probe


def rules(cloud_url: str, local_url: str) -> str:
    return f"""
[defaults]
cloud = true

[providers.sky]
kind = "openai"
url = "{cloud_url}"
zone = "cloud"
key = "sky"

[providers.local]
kind = "ollama"
url = "{local_url}"

[classes]
sky = ["sky:gpt-fake"]

[[rules]]
name = "secret-local"
privacy_at_least = "secret"
zones = ["machine"]

[[rules]]
name = "cloud-first"
class = "sky"
zones = ["cloud", "machine"]
on_private = "withhold"
fallback = ["local:fake-model:1b"]

[agents.quick-ask]
memory_ceiling = "private"
write_memory = true
cloud = true
"""


def test_cloud_zone_gets_only_what_rules_allow_and_ledger_matches(core):
    pub = add_note(core, "The tax filing deadline is the 30th of April.", "public", "Tax calendar")
    per = add_note(core, "Tax advisor Jane says my salary was 91234 euros in 2024.", "personal", "Salary")
    pri = add_note(core, "Private tax memo: bank account DE44 5001 0517 5407 3249 31.", "private", "Bank")
    sec = add_note(core, "Secret tax note: the safe code is 7391.", "secret", "Safe")
    private_markers = ["91234", "DE44 5001", "7391", "Salary", "Bank", "Safe"]
    asked = []

    with FakeLLMServer(models=["gpt-fake"], require_key=KEY, reply=Reply("From the cloud."),
                       on_receive=ledger_probe(core.store)) as sky, \
            FakeLLMServer(reply=Reply("From this machine.")) as local:
        cfg = parse_routing(rules(sky.url, local.url))
        secrets = SecretStore(environ={"DESKMIND_SKY_API_KEY": KEY})

        def approve(req):
            asked.append(req.action)
            return True

        async def main():
            out = {}
            async with ask_session(core, cfg=cfg, approver=approve, targets=(), embedded=None,
                                   timeouts=FAST, secrets=secrets) as p:
                # 1. public prompt; memory holds all four tags -> cloud, private ones withheld
                out["mixed"] = await p.run("When is the tax deadline?", AskOptions(prompt_privacy="public", save=False, model=None, limit=8))
                # 2. a private prompt never goes to the cloud: falls back to this machine
                out["private"] = await p.run("What is my tax situation?", AskOptions(save=False))
                # 3. no memory, public prompt -> cloud with no items
                out["bare"] = await p.run("Say hi", AskOptions(prompt_privacy="public", use_memory=False, save=False))
                # 4. the secret note is above the agent's memory ceiling: never retrieved
                out["secret"] = await p.run("safe code tax", AskOptions(prompt_privacy="secret", save=False, limit=8))
            return out

        out = asyncio.run(main())
        cloud_reqs = sky.chat_requests()
        local_reqs = local.chat_requests()

    assert out["mixed"].route["zone"] == "cloud" and out["mixed"].answer == "From the cloud."
    assert set(out["mixed"].withheld) >= set(per + pri) and not set(out["mixed"].withheld) & set(pub)
    assert {c.chunk_id for c in out["mixed"].citations} == set(pub)
    assert out["private"].route["zone"] == "machine" and "(machine, fallback)" in out["private"].route["reason"]
    assert out["bare"].route["zone"] == "cloud"
    assert out["secret"].route["rule"] == "secret-local" and out["secret"].route["zone"] == "machine"
    assert asked == ["cloud", "cloud"]

    # The cloud server got exactly the two allowed requests, with no private material at all.
    assert len(cloud_reqs) == 2
    for r in sky.received:
        body = r.body.decode()
        for marker in private_markers:
            assert marker not in body, f"{marker!r} leaked to the cloud zone"
        assert r.headers.get("authorization") == f"Bearer {KEY}"
    assert "30th of April" in cloud_reqs[0].body.decode()
    # The local server got the private and secret questions, with their items.
    assert any("91234" in r.body.decode() or "DE44" in r.body.decode() for r in local_reqs)
    # The secret note is above quick-ask's memory ceiling: no request anywhere carried it.
    assert not any("7391" in r.body.decode() for r in local_reqs + cloud_reqs)

    # Each request was in the ledger, committed and marked 'sending', when it arrived.
    assert [r.probe for r in cloud_reqs] == [True, True]
    # The ledger: one row per request received by the cloud server, same bytes, same order.
    ledger = EgressLedger(core.store).entries()
    assert [e.body_sha256 for e in ledger] == [hashlib.sha256(r.body).hexdigest() for r in sky.received]
    assert [e.bytes_out for e in ledger] == [len(r.body) for r in sky.received]
    assert all(e.provider == "sky" and e.zone == "cloud" and e.rule == "cloud-first" for e in ledger)
    assert all(e.status == "ok" and e.bytes_in > 0 for e in ledger)
    assert ledger[0].item_ids == sorted(pub) and ledger[1].item_ids == []
    # Nothing in the ledger (or the DB) holds the API key.
    assert KEY not in json.dumps([e.to_dict() for e in ledger])
    assert not {c.chunk_id for c in out["secret"].citations} & set(sec)


def test_cloud_needs_approval_and_nobody_means_no(core):
    add_note(core, "The tax filing deadline is the 30th of April.", "public")
    with FakeLLMServer(models=["gpt-fake"], require_key=KEY) as sky, FakeLLMServer() as local:
        cfg = parse_routing(rules(sky.url, local.url))

        async def main():
            async with ask_session(core, cfg=cfg, approver=None, targets=(), embedded=None,
                                   timeouts=FAST, secrets=SecretStore(environ={"DESKMIND_SKY_API_KEY": KEY})) as p:
                return await p.run("tax deadline", AskOptions(prompt_privacy="public", save=False))

        res = asyncio.run(main())
        assert sky.received == [] and res.route["zone"] == "machine"
        assert "not approved" in res.route["reason"]
    assert EgressLedger(core.store).count() == 0


LOCAL_ONLY = """
[defaults]
cloud = true
prompt_privacy = "public"

[providers.sky]
kind = "openai"
url = "{sky}"
zone = "cloud"
models = ["gpt-fake"]

[providers.local]
kind = "ollama"
url = "{local}"

[classes]
general = ["local:fake-model:1b"]

[[rules]]
name = "local-only"
zones = ["machine"]
fallback = ["sky:gpt-fake"]

[agents.quick-ask]
memory_ceiling = "private"
cloud = true
"""


def test_a_failing_local_runtime_never_falls_back_to_a_cloud_the_rule_does_not_allow(core):
    from deskmind.core.runtimes.base import RuntimeHTTPError
    from tests.fakes.llm_server import Faults

    add_note(core, "The tax filing deadline is the 30th of April.", "public")
    asked = []
    with FakeLLMServer(models=["gpt-fake"], reply=Reply("From the cloud.")) as sky, \
            FakeLLMServer(faults=Faults(status=500, message="model runner crashed")) as local:
        cfg = parse_routing(LOCAL_ONLY.format(sky=sky.url, local=local.url))

        async def main():
            async with ask_session(core, cfg=cfg, approver=lambda r: asked.append(r) or True,
                                   targets=(), embedded=None, timeouts=FAST,
                                   secrets=SecretStore(environ={})) as p:
                hits = await asyncio.to_thread(p.retrieve, "tax deadline", AskOptions())
                decision = await p.plan("tax deadline", hits, AskOptions())
                with pytest.raises(RuntimeHTTPError, match="model runner crashed"):
                    await p.run("When is the tax deadline?", AskOptions(save=False))
                return decision

        decision = asyncio.run(main())
        assert len(local.chat_requests()) == 1
        assert sky.received == []
    assert [c.ref for c in decision.candidates] == ["local:fake-model:1b"]
    assert "sky:gpt-fake: cloud zone not allowed by rule local-only" in decision.skipped
    assert asked == [] and EgressLedger(core.store).count() == 0
