"""Ollama's native API: /api/chat (NDJSON streaming), /api/tags, /api/show, /api/ps, /api/embed.

Ollama runs every request in a context window of ``num_ctx`` tokens (a small default) and
silently drops the start of a longer prompt. So each chat sets ``num_ctx`` from the prompt's
estimated size, capped at what the model supports.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, AsyncIterator, Sequence

import httpx

from deskmind.core.runtimes.base import (
    ChatRequest, MalformedStreamError, Message, ModelInfo, ModelNotFoundError, RuntimeFault,
    RuntimeHTTPError, StreamEvent, StreamTruncatedError, ToolCall, Usage, plain_tool_choice,
    refuse_unsupported,
)
from deskmind.core.runtimes.http import Transport, encode_body

log = logging.getLogger(__name__)

DEFAULT_PORT = 11434
MIN_CTX = 4096
CTX_STEP = 2048
DEFAULT_ANSWER_TOKENS = 1024


def estimate_tokens(text: str) -> int:
    """A deliberately generous estimate (3 characters a token): too big a window costs a
    little memory, too small a window silently loses the start of the prompt."""
    return len(text) // 3 + 1


def num_ctx_for(messages: Sequence[Message], max_tokens: int | None,
                model_max: int | None) -> int:
    need = sum(estimate_tokens(m.content) + 8 for m in messages)
    need += max_tokens or DEFAULT_ANSWER_TOKENS
    ctx = max(MIN_CTX, -(-need // CTX_STEP) * CTX_STEP)
    if model_max:
        if need > model_max:
            log.warning("prompt of ~%d tokens exceeds the model's %d-token window", need, model_max)
        ctx = min(ctx, model_max)
    return ctx


def context_from_show(data: dict[str, Any]) -> int | None:
    """The model's own context length from an ``/api/show`` answer (``model_info``)."""
    info = data.get("model_info") or {}
    ctx = info.get(f"{info.get('general.architecture', '')}.context_length")
    return ctx if isinstance(ctx, int) and not isinstance(ctx, bool) and ctx > 0 else None


class OllamaRuntime:
    kind = "ollama"
    structured_output = True  # "format" takes a JSON schema

    def __init__(self, name: str, transport: Transport) -> None:
        self.name = name
        self.t = transport
        self.zone = transport.ep.zone
        self._ctx_cache: dict[str, int | None] = {}

    async def available(self) -> bool:
        try:
            await self.t.get_json("/api/version", timeout=self.t.timeouts.connect)
            return True
        except RuntimeFault:
            return False

    async def list_models(self) -> list[ModelInfo]:
        tags = await self.t.get_json("/api/tags")
        try:
            loaded = {m.get("name") for m in (await self.t.get_json("/api/ps")).get("models", [])}
        except RuntimeFault:
            loaded = set()
        return [ModelInfo(provider=self.name, name=m["name"], size=m.get("size"),
                          loaded=m["name"] in loaded, details=m.get("details") or {})
                for m in tags.get("models", [])]

    async def loaded_models(self) -> list[ModelInfo]:
        ps = await self.t.get_json("/api/ps")
        return [ModelInfo(provider=self.name, name=m["name"], size=m.get("size"), loaded=True,
                          context_length=m.get("context_length"))
                for m in ps.get("models", [])]

    async def show(self, model: str) -> ModelInfo:
        try:
            data = await self.t.post_json("/api/show", {"model": model}, model=model)
        except RuntimeHTTPError as exc:
            if exc.status == 404:
                raise ModelNotFoundError(f"{self.name} has no model '{model}': run "
                                         f"'ollama pull {model}' or pick another",
                                         provider=self.name) from None
            raise
        return ModelInfo(provider=self.name, name=model, context_length=context_from_show(data),
                         details={**(data.get("details") or {}),
                                  "capabilities": data.get("capabilities", [])})

    def known_windows(self, windows: dict[str, int | None]) -> None:
        """Context lengths already learnt elsewhere (the hub's inventory): not asked again."""
        self._ctx_cache.update(windows)

    async def context_length(self, model: str) -> int | None:
        if model not in self._ctx_cache:
            try:
                self._ctx_cache[model] = (await self.show(model)).context_length
            except ModelNotFoundError:
                raise
            except RuntimeFault:
                self._ctx_cache[model] = None
        return self._ctx_cache[model]

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        data = await self.t.post_json("/api/embed", {"model": model, "input": list(texts)}, model=model)
        return data["embeddings"]

    def request_body(self, req: ChatRequest) -> bytes:
        """The exact body :meth:`chat` would send for ``req``, sending nothing: the context
        window comes from what is already known (the inventory, an earlier /api/show)."""
        num_ctx = req.num_ctx or num_ctx_for(req.messages, req.max_tokens,
                                              self._ctx_cache.get(req.model))
        return encode_body(self.build_payload(req, num_ctx))

    @staticmethod
    def build_payload(req: ChatRequest, num_ctx: int) -> dict[str, Any]:
        options: dict[str, Any] = {"num_ctx": num_ctx}
        if req.temperature is not None:
            options["temperature"] = req.temperature
        if req.max_tokens is not None:
            options["num_predict"] = req.max_tokens
        sp = req.sampling
        if sp.stop:
            options["stop"] = list(sp.stop)
        for key in ("seed", "top_p", "frequency_penalty", "presence_penalty"):
            if getattr(sp, key) is not None:
                options[key] = getattr(sp, key)
        payload: dict[str, Any] = {"model": req.model, "messages": [_msg(m) for m in req.messages],
                                   "stream": True, "options": options}
        schema = req.json_schema()
        if schema is not None:
            payload["format"] = schema or "json"  # Ollama: "json", or a JSON schema
        if req.tools and sp.tool_choice != "none":
            payload["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in req.tools]
        return payload

    @staticmethod
    def unsupported(req: ChatRequest) -> list[str]:
        out = [] if plain_tool_choice(req.sampling.tool_choice) else ["tool_choice (Ollama lets the model choose)"]
        if req.sampling.user is not None:
            out.append("user")
        return out

    async def chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        refuse_unsupported(self.name, self.kind, req, self.unsupported(req))
        num_ctx = req.num_ctx or num_ctx_for(req.messages, req.max_tokens,
                                              await self.context_length(req.model))
        payload = self.build_payload(req, num_ctx)
        done = False
        async for data in self.t.stream("/api/chat", payload, model=req.model, ctx=req.egress,
                                        parse=_ndjson):
            if "error" in data:
                raise RuntimeHTTPError(f"{self.name} failed mid-answer: {data['error']}",
                                       status=500, provider=self.name)
            msg = data.get("message") or {}
            if msg.get("tool_calls"):
                yield StreamEvent("tool_calls", tool_calls=[
                    ToolCall(id=c.get("id") or f"call_{uuid.uuid4().hex[:8]}",
                             name=c["function"]["name"],
                             arguments=_args(c["function"].get("arguments")))
                    for c in msg["tool_calls"]])
            if msg.get("content"):
                yield StreamEvent("token", text=msg["content"])
            if data.get("done"):
                done = True
                yield StreamEvent("done", finish_reason=data.get("done_reason"), usage=Usage(
                    data.get("prompt_eval_count"), data.get("eval_count")))
        if not done:
            raise StreamTruncatedError(f"{self.name} ended its answer without saying it was done",
                                       provider=self.name)


async def _ndjson(resp: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in resp.aiter_lines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise MalformedStreamError(f"the runtime sent a line that is not JSON: {line[:80]!r}") from None
        if not isinstance(data, dict):
            raise MalformedStreamError(f"the runtime sent an unexpected line: {line[:80]!r}")
        yield data


def _args(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            val = json.loads(raw or "{}")
            return val if isinstance(val, dict) else {"value": val}
        except ValueError:
            raise MalformedStreamError(f"tool call arguments are not JSON: {raw[:80]!r}") from None
    return {}


def _msg(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}}
                             for c in m.tool_calls]
    if m.role == "tool" and m.name:
        out["tool_name"] = m.name
    return out
