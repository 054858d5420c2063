"""Gateway benchmarks: what the MCP server and the OpenAI-compatible endpoint add.

1. MCP search round trip at 10k chunks: the official MCP client calls ``search_memory`` over
   Streamable HTTP on loopback (``deskmind serve`` in its own process, and in the bench's own
   process) and over stdio (``deskmind mcp``) against a store of 10,000 real text chunks
   (stdlib docstrings, /usr/share/doc) with random unit vectors, or with their real vectors
   with --real-vectors (embedded once, cached): the vector cache and sqlite-vec cost the same
   whatever the values. p50/p95 per call, next to the in-process search. Target: p50 <= 15 ms.
2. Endpoint time to first token: the official ``openai`` client streams a chat through the
   gateway (routing + runtimes) to a loopback OpenAI-compatible runtime, against the same
   client streaming from that runtime directly (three processes, as deployed). Target: ratio <= 1.05.

    python bench/gateway.py            # both
    python bench/gateway.py --quick    # 2k chunks, fewer rounds
    python bench/gateway.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import OUT, QUERIES, embedded_corpus, load_average, make_embedder, percentiles  # noqa: E402

CHUNKS_PER_SOURCE = 20


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def corpus(embedder: Any, n: int, random_vectors: bool = False) -> tuple[list[str], Any]:
    """n real chunks with their real vectors (cached; a larger cached corpus is reused).

    ``random_vectors``: real text with random unit vectors instead, for quick runs. sqlite-vec
    scans every vector whatever its values, so search timings match; which chunks come back
    differs."""
    if random_vectors:
        import numpy as np

        from common import real_chunks

        texts = real_chunks(n)
        rng = np.random.default_rng(7)
        mat = rng.standard_normal((len(texts), embedder.dim)).astype(np.float32)
        return texts, mat / np.linalg.norm(mat, axis=1, keepdims=True)
    model = getattr(embedder, "model_id", "model")
    for f in sorted(OUT.glob(f"corpus-*-{model}.npy")):
        size = int(f.name.split("-")[1])
        if size >= n:
            texts, mat = embedded_corpus(embedder, size, log)
            if len(texts) >= n:
                return texts[:n], mat[:n]
    return embedded_corpus(embedder, n, log)


def fill_store(core: Any, texts: list[str], mat: Any) -> None:
    from deskmind.core.memory.models import NewChunk, SourceDraft
    from deskmind.core.memory.store import text_hash

    emb = core.embedder()
    idx = core.store.ensure_active_index(emb.model_id, emb.dim)
    privacies = ("public", "personal", "private")
    for s in range(0, len(texts), CHUNKS_PER_SOURCE):
        part = texts[s:s + CHUNKS_PER_SOURCE]
        vecs = {text_hash(t): mat[s + i] for i, t in enumerate(part)}
        draft = SourceDraft(uri=f"deskmind://note/bench-{s}", kind="note", title=f"bench {s}",
                            privacy=privacies[(s // CHUNKS_PER_SOURCE) % 3], text="\n\n".join(part),
                            chunks=[NewChunk(t, {"n": i}) for i, t in enumerate(part)])
        core.store.put_source(draft, idx, vecs)


async def mcp_http_round_trips(url: str, token: str, rounds: int) -> list[float]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    out = []
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as hc:
        async with Client(streamable_http_client(url + "/mcp", http_client=hc)) as c:
            for q in QUERIES[:4]:
                await c.call_tool("search_memory", {"query": q})  # warm up
            for _ in range(rounds):
                for q in QUERIES:
                    t = time.perf_counter()
                    r = await c.call_tool("search_memory", {"query": q, "limit": 8})
                    out.append((time.perf_counter() - t) * 1000)
                    assert not r.is_error and r.structured_content["results"], r
    return out


async def mcp_stdio_round_trips(home: Path, rounds: int) -> list[float]:
    from mcp import Client, StdioServerParameters

    env = {**os.environ, "DESKMIND_HOME": str(home)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "deskmind", "mcp", "--client", "bench"],
                                   env=env)
    out = []
    async with Client(params, read_timeout_seconds=120) as c:
        for q in QUERIES[:4]:
            await c.call_tool("search_memory", {"query": q})
        for _ in range(rounds):
            for q in QUERIES:
                t = time.perf_counter()
                r = await c.call_tool("search_memory", {"query": q, "limit": 8})
                out.append((time.perf_counter() - t) * 1000)
                assert not r.is_error, r
    return out


def bench_mcp(n_chunks: int, rounds: int, random_vectors: bool = False) -> dict[str, Any]:
    from deskmind.core.app import Core
    from deskmind.core.gateway.clients import Scopes
    from deskmind.core.gateway.service import Caller
    from deskmind.core.gateway.stack import Gateway, GatewayConfig, HttpServer

    embedder = make_embedder()
    texts, mat = corpus(embedder, n_chunks, random_vectors)
    home = Path(tempfile.mkdtemp(prefix="deskmind-bench-gateway-"))
    os.environ["DESKMIND_HOME"] = str(home)
    core = Core()
    core._embedders[embedder.model_id] = embedder
    t0 = time.perf_counter()
    fill_store(core, texts, mat)
    log(f"store: {len(texts)} chunks in {time.perf_counter() - t0:.1f} s")
    gw = Gateway(core, GatewayConfig())
    gw.clients.grant("bench", Scopes(read="private", rate=10_000, burst=10_000))
    token = gw.clients.rotate_token("bench")
    caller = Caller(gw.clients.get("bench"), "bench")

    direct = []
    for q in QUERIES[:4]:
        gw.service.search(caller, q)
    for _ in range(rounds):
        for q in QUERIES:
            t = time.perf_counter()
            gw.service.search(caller, q, 8)
            direct.append((time.perf_counter() - t) * 1000)

    # Same process: the client competes with the server for the interpreter lock.
    srv = HttpServer(gw.http_app(api=False), port=0).start()
    try:
        http_in = asyncio.run(mcp_http_round_trips(srv.url, token, rounds))
    finally:
        srv.stop()
    gw.audit.flush()
    # As deployed: `deskmind serve` in its own process, the MCP host in another.
    http = asyncio.run(_with_serve(home, lambda url: mcp_http_round_trips(url, token, rounds)))
    stdio = asyncio.run(mcp_stdio_round_trips(home, rounds))
    core.close()
    res: dict[str, Any] = {"chunks": len(texts), "calls": len(http),
                           "vectors": "random unit" if random_vectors else "real (MiniLM)"}
    for name, samples in (("service_search_ms", direct), ("mcp_http_ms", http),
                          ("mcp_http_same_process_ms", http_in), ("mcp_stdio_ms", stdio)):
        p50, p95 = percentiles(samples)
        res[name] = {"p50": round(p50, 2), "p95": round(p95, 2)}
    res["target_p50_ms"] = 15.0
    res["meets_target"] = res["mcp_http_ms"]["p50"] <= 15.0
    return res


async def _with_serve(home: Path, fn: Any) -> Any:
    """Run ``fn(url)`` against ``deskmind serve --mcp-http`` started on ``home``."""
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = _spawn([sys.executable, "-m", "deskmind", "serve", "--mcp-http", "--port", str(port),
                   "--no-watch", "--no-backup"], env={**os.environ, "DESKMIND_HOME": str(home)})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        return await fn(url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


TTFT_RULES = """
[defaults]
discover = false

[providers.local]
kind = "openai"
url = "{url}"

[classes]
general = ["local:fake-model:1b"]

[[rules]]
name = "local-first"
class = "general"
zones = ["machine"]
"""


def _first_token_ms(oa: Any, model: str, extra: dict[str, Any] | None = None) -> float:
    t = time.perf_counter()
    stream = oa.chat.completions.create(model=model, stream=True, extra_body=extra,
                                        messages=[{"role": "user", "content": "When do I water the tomatoes?"}])
    first = None
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = (time.perf_counter() - t) * 1000
    assert first is not None
    return first


FAKE_RUNTIME = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.fakes.llm_server import FakeLLMServer, Faults, Reply
srv = FakeLLMServer(reply=Reply(" ".join(f"tok{i}" for i in range(20))),
                    faults=Faults(slow_first_byte=float(sys.argv[2]) / 1000)).start()
print(srv.url, flush=True)
sys.stdin.read()
"""


def _spawn(args: list[str], env: dict[str, str] | None = None, **kw: Any) -> Any:
    import subprocess

    return subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, **kw)


def bench_ttft(rounds: int, runtime_first_token_ms: float) -> dict[str, Any]:
    """Time to first token through the gateway vs straight to the runtime, as deployed: the
    runtime, ``deskmind serve`` and the client are three processes."""
    import socket

    import httpx
    import openai

    from deskmind.core.app import Core
    from deskmind.core.gateway.clients import ClientRegistry, Scopes
    from deskmind.core.memory.models import NewChunk, SourceDraft

    root = Path(__file__).resolve().parents[1]
    home = Path(tempfile.mkdtemp(prefix="deskmind-bench-ttft-"))
    env = {**os.environ, "DESKMIND_HOME": str(home)}
    os.environ["DESKMIND_HOME"] = str(home)
    res: dict[str, Any] = {"runtime_first_token_ms": runtime_first_token_ms, "rounds": rounds,
                           "topology": "client, deskmind serve and the runtime in 3 processes"}
    fake = _spawn([sys.executable, "-c", FAKE_RUNTIME, str(root), str(runtime_first_token_ms)])
    serve = None
    try:
        url = fake.stdout.readline().strip()
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "routing.toml").write_text(TTFT_RULES.format(url=url))
        with Core() as core:
            for i in range(50):
                text = f"Garden note {i}: the tomatoes need water on Tuesdays and Fridays, bed {i}."
                core.remember(SourceDraft(uri=f"deskmind://note/t{i}", kind="note", privacy="personal",
                                          text=text, chunks=[NewChunk(text)]))
            reg = ClientRegistry(core.store)
            reg.grant("bench", Scopes(read="personal", ask=True, ground=True, rate=1e4, burst=10_000))
            token = reg.rotate_token("bench")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        serve = _spawn([sys.executable, "-m", "deskmind", "serve", "--api", "--port", str(port),
                        "--no-watch", "--no-backup"], env=env)
        gw_url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(gw_url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        raw = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        via = openai.OpenAI(base_url=gw_url + "/v1", api_key=token, max_retries=0)
        off = {"deskmind": {"memory": False}}
        for _ in range(3):  # warm up both paths (connections, inventory, embedder)
            _first_token_ms(raw, "fake-model:1b")
            _first_token_ms(via, "general", off)
            _first_token_ms(via, "general")
        samples: dict[str, list[float]] = {"raw": [], "gateway": [], "gateway_grounded": []}
        for _ in range(rounds):  # interleaved, so load changes hit all three alike
            samples["raw"].append(_first_token_ms(raw, "fake-model:1b"))
            samples["gateway"].append(_first_token_ms(via, "general", off))
            samples["gateway_grounded"].append(_first_token_ms(via, "general"))
    finally:
        for p in (serve, fake):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)
    for name, xs in samples.items():
        p50, p95 = percentiles(xs)
        res[f"{name}_ms"] = {"p50": round(p50, 2), "p95": round(p95, 2)}
    raw50 = res["raw_ms"]["p50"]
    res["overhead_ms_p50"] = round(res["gateway_ms"]["p50"] - raw50, 2)
    res["ratio_p50"] = round(res["gateway_ms"]["p50"] / raw50, 3)
    res["grounded_ratio_p50"] = round(res["gateway_grounded_ms"]["p50"] / raw50, 3)
    res["target_ratio"] = 1.05
    res["meets_target"] = res["ratio_p50"] <= 1.05
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2k chunks, one round")
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=("mcp", "ttft"))
    ap.add_argument("--real-vectors", action="store_true",
                    help="embed the 10k real chunks (cached in bench/out/) instead of random unit "
                         "vectors; search costs the same either way, which chunks match differs")
    ap.add_argument("--runtime-first-token-ms", type=float, default=250.0,
                    help="the loopback runtime's own time to first token: a model-like prefill delay (as bench/ask.py)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n = 2000 if args.quick else args.chunks
    rounds = 1 if args.quick else args.rounds
    out: dict[str, Any] = {"machine": load_average()}
    if args.only in (None, "mcp"):
        out["mcp_search"] = bench_mcp(n, rounds, random_vectors=not args.real_vectors)
    if args.only in (None, "ttft"):
        out["endpoint_ttft"] = bench_ttft(10 if args.quick else 30, args.runtime_first_token_ms)
    out["machine_after"] = load_average()
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
