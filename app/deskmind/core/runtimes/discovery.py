"""Find model servers already running on this machine, on their usual loopback ports.

Only loopback addresses are probed, so discovery never sends a byte off the machine. The
list can be replaced with ``DESKMIND_DISCOVER`` (``name=kind@host:port,...``) for servers on
unusual ports.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Sequence

import httpx

from deskmind.core.routing.zones import derive_zone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # a registered runtime kind that can be probed
    url: str
    label: str = ""


USUAL_TARGETS: tuple[Target, ...] = (
    Target("ollama", "ollama", "http://127.0.0.1:11434", "Ollama"),
    Target("lmstudio", "openai", "http://127.0.0.1:1234", "LM Studio"),
    Target("llamacpp-server", "openai", "http://127.0.0.1:8080", "llama.cpp server / MLX / LocalAI"),
    Target("vllm", "openai", "http://127.0.0.1:8000", "vLLM"),
    Target("sglang", "openai", "http://127.0.0.1:30000", "SGLang"),
    Target("jan", "openai", "http://127.0.0.1:1337", "Jan"),
    Target("mlx", "openai", "http://127.0.0.1:10240", "MLX (mlx-omni-server)"),
)


def targets_from_env(environ: dict[str, str] | None = None) -> tuple[Target, ...]:
    from deskmind.core.runtimes.kinds import RUNTIME_KINDS

    env = os.environ if environ is None else environ
    spec = env.get("DESKMIND_DISCOVER")
    if spec is None:
        return USUAL_TARGETS
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rest = part.partition("=")
        kind, _, hostport = rest.partition("@")
        if not (name and kind in RUNTIME_KINDS.probed() and hostport):
            log.warning("ignoring DESKMIND_DISCOVER entry %r (want name=kind@host:port)", part)
            continue
        out.append(Target(name, kind, f"http://{hostport}", name))
    return tuple(out)


@dataclass
class Found:
    target: Target
    models: list[str]
    loaded: list[str]
    context: dict[str, int] = field(default_factory=dict)  # model -> window, where reported


def reported_context(entry: dict) -> int | None:
    """The context window an OpenAI-compatible server reports for one ``/v1/models`` entry:
    ``context_length`` (OpenRouter-style), ``max_context_length`` (LM Studio),
    ``max_model_len`` (vLLM) or llama.cpp server's ``meta`` (``n_ctx``, else the model's
    trained ``n_ctx_train``). None when it reports none."""
    for key in ("context_length", "max_context_length", "max_model_len"):
        v = entry.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    meta = entry.get("meta")
    if isinstance(meta, dict):
        for key in ("n_ctx", "n_ctx_train"):
            v = meta.get(key)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    return None


async def discover(client: httpx.AsyncClient, targets: Sequence[Target],
                   timeout: float = 0.5) -> list[Found]:
    """Probe every loopback target at once; return those that answered like a model server."""
    local = [t for t in targets if derive_zone(t.url, []) == "machine"]
    results = await asyncio.gather(*(_probe(client, t, timeout) for t in local))
    return [r for r in results if r is not None]


async def _probe(client: httpx.AsyncClient, t: Target, timeout: float) -> Found | None:
    from deskmind.core.runtimes.kinds import RUNTIME_KINDS

    kind = RUNTIME_KINDS.get(t.kind) if t.kind in RUNTIME_KINDS else None
    if kind is None or kind.probe is None:
        return None
    try:
        got = await kind.probe(client, t.url, timeout)
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None if got is None else Found(t, *got)


async def probe_ollama(client: httpx.AsyncClient, url: str,
                       timeout: float) -> tuple[list[str], list[str], dict[str, int]] | None:
    """Ollama's own API: its models, and those loaded now."""
    r = await client.get(url + "/api/tags", timeout=timeout)
    if r.status_code != 200:
        return None
    models = [m["name"] for m in r.json().get("models", [])]
    loaded: list[str] = []
    try:
        ps = await client.get(url + "/api/ps", timeout=timeout)
        loaded = [m["name"] for m in ps.json().get("models", [])]
    except (httpx.HTTPError, ValueError, KeyError):
        pass
    return models, loaded, {}


async def probe_openai(client: httpx.AsyncClient, url: str,
                       timeout: float) -> tuple[list[str], list[str], dict[str, int]] | None:
    """An OpenAI-compatible server's ``/v1/models``, with the windows it reports."""
    r = await client.get(url + "/v1/models", timeout=timeout)
    if r.status_code != 200:
        return None
    entries = r.json().get("data", [])
    context = {m["id"]: n for m in entries if (n := reported_context(m))}
    return [m["id"] for m in entries], [], context
