"""OpenAI's chat-completions protocol with SSE streaming.

Spoken by OpenAI itself and by most local servers: LM Studio, llama.cpp's server, vLLM,
SGLang, MLX (mlx_lm.server), Jan and Ollama's /v1. Base URLs are given without ``/v1``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncIterator, Sequence

import httpx
from httpx_sse import EventSource, SSEError

from deskmind.core.runtimes.base import (
    ChatRequest, MalformedStreamError, Message, ModelInfo, RuntimeFault, RuntimeHTTPError,
    StreamEvent, StreamTruncatedError, ToolCall, Usage,
)
from deskmind.core.runtimes.discovery import reported_context
from deskmind.core.runtimes.http import Transport, encode_body

log = logging.getLogger(__name__)


class OpenAICompatRuntime:
    kind = "openai"
    structured_output = True  # response_format json_schema (OpenAI, llama.cpp's server, vLLM)

    def __init__(self, name: str, transport: Transport) -> None:
        self.name = name
        self.t = transport
        self.zone = transport.ep.zone

    async def available(self) -> bool:
        try:
            await self.t.get_json("/v1/models", timeout=self.t.timeouts.connect)
            return True
        except RuntimeFault:
            return False

    async def list_models(self) -> list[ModelInfo]:
        data = await self.t.get_json("/v1/models")
        out = []
        for m in data.get("data", []):
            out.append(ModelInfo(provider=self.name, name=m["id"], context_length=reported_context(m),
                                 details={k: v for k, v in m.items() if k in ("owned_by", "object")}))
        return out

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        data = await self.t.post_json("/v1/embeddings", {"model": model, "input": list(texts)},
                                      model=model)
        rows = sorted(data["data"], key=lambda d: d.get("index", 0))
        return [r["embedding"] for r in rows]

    def request_body(self, req: ChatRequest) -> bytes:
        """The exact body :meth:`chat` would send for ``req`` (nothing is sent)."""
        return encode_body(self.build_payload(req))

    @staticmethod
    def build_payload(req: ChatRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": req.model, "stream": True,
                                   "messages": [_msg(m) for m in req.messages]}
        if req.temperature is not None:
            payload["temperature"] = req.temperature
        if req.max_tokens is not None:
            payload["max_tokens"] = req.max_tokens
        if req.response_schema is not None:
            payload["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": req.response_schema, "strict": False}}
        if req.tools:
            payload["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in req.tools]
        sp = req.sampling
        if sp.stop:
            payload["stop"] = list(sp.stop)
        for key in ("seed", "top_p", "frequency_penalty", "presence_penalty", "response_format", "user"):
            if getattr(sp, key) is not None:
                payload[key] = getattr(sp, key)
        if sp.tool_choice is not None and req.tools:
            payload["tool_choice"] = sp.tool_choice
        # The last event then carries the server's token counts.
        payload["stream_options"] = {"include_usage": True}
        return payload

    async def chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        partial: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage: Usage | None = None
        saw_done = False
        async for data in self.t.stream("/v1/chat/completions", self.build_payload(req),
                                        model=req.model, ctx=req.egress, parse=_sse_json):
            if data is None:  # [DONE]: the stream ends right after
                saw_done = True
                continue
            if data.get("error"):
                err = data["error"]
                msg = err.get("message") if isinstance(err, dict) else str(err)
                raise RuntimeHTTPError(f"{self.name} failed mid-answer: {msg}", status=500,
                                       provider=self.name)
            if data.get("usage"):
                u = data["usage"]
                usage = Usage(u.get("prompt_tokens"), u.get("completion_tokens"))
            for choice in data.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    yield StreamEvent("token", text=delta["content"])
                for tc in delta.get("tool_calls") or []:
                    slot = partial.setdefault(tc.get("index", 0), {"id": "", "name": "", "args": ""})
                    slot["id"] = tc.get("id") or slot["id"]
                    fn = tc.get("function") or {}
                    slot["name"] += fn.get("name") or ""
                    slot["args"] += fn.get("arguments") or ""
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        if not saw_done and finish is None:
            raise StreamTruncatedError(f"{self.name} ended its answer without finishing it",
                                       provider=self.name)
        if partial:
            calls = []
            for i in sorted(partial):
                s = partial[i]
                try:
                    args = json.loads(s["args"] or "{}")
                except ValueError:
                    raise MalformedStreamError(
                        f"{self.name} sent tool arguments that are not JSON: {s['args'][:80]!r}",
                        provider=self.name) from None
                calls.append(ToolCall(id=s["id"] or f"call_{i}", name=s["name"],
                                      arguments=args if isinstance(args, dict) else {"value": args}))
            yield StreamEvent("tool_calls", tool_calls=calls)
        yield StreamEvent("done", finish_reason=finish, usage=usage)


async def _sse_json(resp: httpx.Response) -> AsyncIterator[dict[str, Any] | None]:
    try:
        async for ev in EventSource(resp).aiter_sse():
            if not ev.data:
                continue
            if ev.data.strip() == "[DONE]":
                yield None
                return
            try:
                data = json.loads(ev.data)
            except ValueError:
                raise MalformedStreamError(
                    f"the runtime sent an event that is not JSON: {ev.data[:80]!r}") from None
            if not isinstance(data, dict):
                raise MalformedStreamError(f"the runtime sent an unexpected event: {ev.data[:80]!r}")
            yield data
    except SSEError as exc:
        raise MalformedStreamError(f"the runtime's stream is not server-sent events: {exc}") from None


def _msg(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": json.dumps(c.arguments)}} for c in m.tool_calls]
    if m.role == "tool":
        out["tool_call_id"] = m.tool_call_id or ""
    return out
