"""How often ``ask`` is right on a personal-notes evaluation set, with a real local model.

The set (bench/eval): 30 short notes and 44 questions about them, each with the fact its answer
must contain and the words its evidence must contain; ten more questions are about nothing the
notes hold (some close to a note: "the password of my bank account" against the wifi note),
where the right outcome is to say so without asking a model. The questions at odd positions are
a held-out half, never looked at while the answering was designed: the figures are given for
each half (``--half design`` runs only the other half).

Prints, for the model given (default: the bundled SmolLM2-135M-Instruct through llama.cpp):
  answers correct     answered questions whose answer contains the fact
  evidence correct    answered questions whose cited evidence contains the evidence words
  abstained right     unrelated questions answered "nothing relevant" with no model asked
  abstained wrongly   answerable questions that got "nothing relevant"
  unsupported         answers with a sentence the check marked as not backed by a passage
and the relevance of every question's best passage, for calibrating the threshold.

Usage: python bench/eval_ask.py [--gguf PATH] [--show] [--no-model] [--half design|held-out]
  --gguf PATH   another GGUF (with a chat template) instead of the bundled model
  --no-model    grade retrieval, evidence and the relevance threshold only (no answers)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(__file__).resolve().parent / "eval"


def norm(s: str) -> str:
    return " ".join(s.lower().replace("\u2011", "-").split())


def contains_fact(answer: str, facts: list[str]) -> bool:
    a = norm(answer)
    for f in facts:
        f = norm(f)
        if re.fullmatch(r"\d+", f):  # a bare number must stand alone ("35" is not "1350")
            if re.search(rf"(?<![\d.,]){re.escape(f)}(?![\d]|[.,]\d)", a):
                return True
        elif f in a:
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", help="a GGUF with a chat template to use instead of the bundled model")
    ap.add_argument("--no-model", action="store_true", help="grade retrieval and evidence only")
    ap.add_argument("--show", action="store_true", help="print every answer")
    ap.add_argument("--half", choices=("design", "held-out"),
                    help="only the questions at even (design) or odd (held-out) positions")
    args = ap.parse_args()

    home = tempfile.mkdtemp(prefix="deskmind-eval-")
    os.environ["DESKMIND_HOME"] = home
    os.environ.setdefault("DESKMIND_DISCOVER", "")
    from deskmind.core.app import Core
    from deskmind.core.ask.pipeline import AskOptions
    from deskmind.core.ask.session import ask_session

    spec = json.loads((EVAL / "questions.json").read_text())
    questions = [dict(item, half="held-out" if k % 2 else "design")
                 for k, item in enumerate(spec["questions"])]
    if args.half:
        questions = [q for q in questions if q["half"] == args.half]
    core = Core()
    t = time.perf_counter()
    core.indexer().index([EVAL / "notes"])
    print(f"indexed {len(list((EVAL / 'notes').glob('*.md')))} notes in {time.perf_counter() - t:.1f} s")

    cfg = None
    if args.gguf:
        # A GGUF of the person's, run in-process, as routing.toml declares one.
        from deskmind.core.routing.config import parse_routing

        gguf = Path(args.gguf).resolve()
        cfg = parse_routing(f"""
[defaults]
discover = false
[providers.big]
kind = "llamacpp"
model_path = "{gguf}"
[classes]
general = ["big:{gguf.stem}"]
[[rules]]
name = "local"
class = "general"
zones = ["machine"]
""")

    rows = []

    async def run() -> None:
        from deskmind.core.secrets import SecretStore

        async with ask_session(core, cfg=cfg, targets=(), secrets=SecretStore(environ={})) as p:
            for item in questions:
                opts = AskOptions(save=False)
                t0 = time.perf_counter()
                hits = await asyncio.to_thread(p.retrieve, item["q"], opts)
                graded = await asyncio.to_thread(p.grade, item["q"], hits)
                best = max(graded, key=lambda g: g.relevance) if graded else None
                row = {"item": item, "best": best.relevance if best else 0.0,
                       "best_note": Path(best.hit.source).stem if best else None}
                if item["note"] is not None:
                    mine = [g for g in graded if Path(g.hit.source).stem == item["note"]]
                    row["pre_evidence_ok"] = bool(mine) and norm(item["evidence"]) in norm(mine[0].evidence)
                if not args.no_model:
                    res = await p.run(item["q"], opts)
                    row["secs"] = time.perf_counter() - t0
                    row["res"] = res
                    print(f"  {row['secs']:5.1f} s  {item['q']}  -> {res.answer[:90]!r}",
                          file=sys.stderr, flush=True)
                rows.append(row)

    asyncio.run(run())
    core.close()
    load = os.getloadavg()

    answerable = [r for r in rows if r["item"]["note"] is not None]
    unrelated = [r for r in rows if r["item"]["note"] is None]
    print(f"\nrelevance of the best passage (threshold calibration), load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("  answerable: " + " ".join(f"{r['best']:.2f}" for r in sorted(answerable, key=lambda r: r["best"])))
    print("  unrelated:  " + " ".join(f"{r['best']:.2f}" for r in sorted(unrelated, key=lambda r: r["best"])))
    for r in sorted(unrelated, key=lambda r: -r["best"])[:3]:
        print(f"    closest unrelated: {r['best']:.2f} {r['item']['q']!r} ~ {r['best_note']}")
    for r in sorted(answerable, key=lambda r: r["best"])[:3]:
        print(f"    weakest answerable: {r['best']:.2f} {r['item']['q']!r}")
    retrieved = sum(r["best_note"] == r["item"]["note"] for r in answerable)
    print(f"  best passage is the right note: {retrieved}/{len(answerable)}")
    pre = sum(r["pre_evidence_ok"] for r in answerable)
    print(f"  evidence from the question alone correct: {pre}/{len(answerable)} = {pre / len(answerable):.2f}")
    if args.no_model:
        return 0

    ok_ans = ok_ev = wrong_abstain = unsupported = stopped = 0
    for r in answerable:
        res = r["res"]
        item = r["item"]
        if res.abstained:
            wrong_abstain += 1
        else:
            r["answer_ok"] = contains_fact(res.answer, item["facts"])
            ok_ans += r["answer_ok"]
        cites = [c for c in res.citations if Path(c.source).stem == item["note"]]
        r["evidence_ok"] = bool(cites) and norm(item["evidence"]) in norm(cites[0].evidence)
        ok_ev += r["evidence_ok"]
        unsupported += bool(res.unsupported)
        stopped += res.stopped is not None
    right_abstain = sum(r["res"].abstained for r in unrelated)
    n = len(answerable)
    secs = sorted(r["secs"] for r in rows if not r["res"].abstained)
    model = rows[0]["res"].route.get("model") or "-"
    for r in rows:
        if args.show or (r["item"]["note"] and not (r.get("answer_ok") and r.get("evidence_ok"))):
            res = r["res"]
            flag = "ok" if r.get("answer_ok") else ("--" if r["item"]["note"] else "")
            print(f"\n[{flag}] {r['item']['q']}  (best {r['best']:.2f} {r['best_note']})\n  -> {res.answer!r}")
            for c in res.citations:
                print(f"     [{c.n}] {Path(c.source).stem}: {c.evidence!r}")
            if res.unsupported:
                print(f"     unsupported: {res.unsupported}")
    print(f"\nmodel {model}, {n} answerable and {len(unrelated)} unrelated questions, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"  answers correct:   {ok_ans}/{n} = {ok_ans / n:.2f}   (target >= 0.70)")
    for half in ("design", "held-out"):
        part = [r for r in answerable if r["item"]["half"] == half]
        if part and len(part) < n:
            good = sum(bool(r.get("answer_ok")) for r in part)
            ev = sum(r["evidence_ok"] for r in part)
            print(f"    {half + ' half:':15} answers {good}/{len(part)} = {good / len(part):.2f}, "
                  f"evidence {ev}/{len(part)} = {ev / len(part):.2f}")
    print(f"  evidence correct:  {ok_ev}/{n} = {ok_ev / n:.2f}   (target >= 0.90)")
    print(f"  abstained right:   {right_abstain}/{len(unrelated)} unrelated questions, no model asked")
    print(f"  abstained wrongly: {wrong_abstain}/{n} answerable questions")
    print(f"  answers with a sentence marked unsupported: {unsupported}/{n}; cut for repetition: {stopped}")
    if secs:
        print(f"  seconds per answered question: median {secs[len(secs) // 2]:.2f}, max {secs[-1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
