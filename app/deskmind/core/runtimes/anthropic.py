"""Anthropic's Messages API with SSE streaming (cloud zone; used only when a rule says so)."""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncIterator, Sequence

import httpx
from httpx_sse import EventSource, SSEError

from deskmind.core.errors import UserInputError
from deskmind.core.runtimes.base import (
    ChatRequest, MalformedStreamError, Message, ModelInfo, RuntimeFault, RuntimeHTTPError,
    StreamEvent, StreamTruncatedError, ToolCall, Usage, refuse_unsupported,
)
from deskmind.core.runtimes.http import Transport, encode_body

log = logging.getLogger(__name__)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 2048


class AnthropicRuntime:
    kind = "anthropic"
    # The Messages API has no schema-constrained decoding: a response_schema is not sent and
    # the caller parses the answer as it comes (see ChatRequest.response_schema).
    structured_output = False

    def __init__(self, name: str, transport: Transport) -> None:
        self.name = name
        self.t = transport
        self.zone = transport.ep.zone
        self.t.ep.headers.setdefault("anthropic-version", API_VERSION)

    async def available(self) -> bool:
        return "x-api-key" in self.t.ep.headers

    async def list_models(self) -> list[ModelInfo]:
        data = await self.t.get_json("/v1/models")
        return [ModelInfo(provider=self.name, name=m["id"],
                          details={"display_name": m.get("display_name")})
                for m in data.get("data", [])]

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        raise UserInputError("Anthropic offers no embeddings API: choose another embedder")

    def request_body(self, req: ChatRequest) -> bytes:
        """The exact body :meth:`chat` would send for ``req`` (nothing is sent)."""
        return encode_body(self.build_payload(req))

    @staticmethod
    def build_payload(req: ChatRequest) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in req.messages if m.role == "system")
        msgs: list[dict[str, Any]] = []
        for m in req.messages:
            if m.role == "system":
                continue
            block = _blocks(m)
            role = "user" if m.role in ("user", "tool") else "assistant"
            if msgs and msgs[-1]["role"] == role:  # the API wants roles to alternate
                msgs[-1]["content"].extend(block)
            else:
                msgs.append({"role": role, "content": block})
        payload: dict[str, Any] = {"model": req.model, "stream": True, "messages": msgs,
                                   "max_tokens": req.max_tokens or DEFAULT_MAX_TOKENS}
        if system:
            payload["system"] = system
        if req.temperature is not None:
            payload["temperature"] = req.temperature
        if req.tools:
            payload["tools"] = [{"name": t.name, "description": t.description,
                                 "input_schema": t.parameters} for t in req.tools]
        sp = req.sampling
        if sp.stop:
            payload["stop_sequences"] = list(sp.stop)
        if sp.top_p is not None:
            payload["top_p"] = sp.top_p
        if sp.user is not None:
            payload["metadata"] = {"user_id": sp.user}
        choice = _tool_choice(sp.tool_choice)
        if choice is not None and req.tools:
            payload["tool_choice"] = choice
        return payload

    @staticmethod
    def unsupported(req: ChatRequest) -> list[str]:
        sp = req.sampling
        out = [k for k in ("seed", "frequency_penalty", "presence_penalty") if getattr(sp, k) is not None]
        if sp.json_schema() is not None:
            out.append("response_format")
        if sp.tool_choice is not None and _tool_choice(sp.tool_choice) is None:
            out.append("tool_choice")
        return out

    async def chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        refuse_unsupported(self.name, self.kind, req, self.unsupported(req))
        blocks: dict[int, dict[str, Any]] = {}
        stop: str | None = None
        usage = Usage()
        finished = False
        async for ev, data in self.t.stream("/v1/messages", self.build_payload(req),
                                            model=req.model, ctx=req.egress, parse=_events):
            if ev == "error":
                err = data.get("error") or {}
                raise RuntimeHTTPError(f"{self.name} failed mid-answer: "
                                       f"{err.get('type', 'error')}: {err.get('message', '')}",
                                       status=500, provider=self.name)
            if ev == "message_start":
                usage.prompt_tokens = ((data.get("message") or {}).get("usage") or {}).get("input_tokens")
            elif ev == "content_block_start":
                cb = data.get("content_block") or {}
                blocks[data.get("index", 0)] = {"type": cb.get("type"), "id": cb.get("id"),
                                                "name": cb.get("name"), "json": ""}
                if cb.get("type") == "text" and cb.get("text"):
                    yield StreamEvent("token", text=cb["text"])
            elif ev == "content_block_delta":
                d = data.get("delta") or {}
                if d.get("type") == "text_delta" and d.get("text"):
                    yield StreamEvent("token", text=d["text"])
                elif d.get("type") == "input_json_delta":
                    blocks.setdefault(data.get("index", 0), {"type": "tool_use", "json": ""})
                    blocks[data.get("index", 0)]["json"] += d.get("partial_json") or ""
            elif ev == "message_delta":
                stop = (data.get("delta") or {}).get("stop_reason") or stop
                usage.completion_tokens = (data.get("usage") or {}).get("output_tokens")
            elif ev == "message_stop":
                finished = True
        if not finished:
            raise StreamTruncatedError(f"{self.name} ended its answer without message_stop",
                                       provider=self.name)
        calls = []
        for i in sorted(blocks):
            b = blocks[i]
            if b.get("type") != "tool_use":
                continue
            try:
                args = json.loads(b["json"] or "{}")
            except ValueError:
                raise MalformedStreamError(f"{self.name} sent tool input that is not JSON",
                                           provider=self.name) from None
            calls.append(ToolCall(id=b.get("id") or f"toolu_{i}", name=b.get("name") or "", arguments=args))
        if calls:
            yield StreamEvent("tool_calls", tool_calls=calls)
        yield StreamEvent("done", finish_reason=stop, usage=usage)


async def _events(resp: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    try:
        async for ev in EventSource(resp).aiter_sse():
            if ev.event == "ping" or not ev.data:
                continue
            try:
                data = json.loads(ev.data)
            except ValueError:
                raise MalformedStreamError(
                    f"the runtime sent an event that is not JSON: {ev.data[:80]!r}") from None
            yield (ev.event or data.get("type", "")), data
    except SSEError as exc:
        raise MalformedStreamError(f"the runtime's stream is not server-sent events: {exc}") from None


def _blocks(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        return [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}]
    out: list[dict[str, Any]] = []
    if m.content:
        out.append({"type": "text", "text": m.content})
    for c in m.tool_calls:
        out.append({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
    return out or [{"type": "text", "text": ""}]


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    """OpenAI's tool_choice in Anthropic's words; None when it has none."""
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        return {"type": "tool", "name": name} if name else None
    return None
