"""An OpenAI-compatible endpoint on loopback: ``/v1/models``, ``/v1/chat/completions``
(streaming SSE and not) and ``/v1/embeddings``.

The model name picks a model class (``general``, ``fast``, ``coder``...) or a concrete
``provider:model``; the same routing rules as ``deskmind ask`` decide where it runs. When
the person allowed it for this client (scope ``ground``), the last user message is looked up
in memory (within the client's read ceiling) and the passages are added as numbered sources;
routing withholds any passage a zone may not see. The chat itself is delegated to a
:class:`ChatBackend` (routing + runtimes); this module only speaks the OpenAI wire format.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol

import anyio
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.gateway.http_guard import client_of
from deskmind.core.gateway.service import Caller, PermissionDenied
from deskmind.core.memory.models import PRIVACY_LEVELS
from deskmind.core.runtimes.base import Message, StreamEvent, Tool, ToolCall

log = logging.getLogger(__name__)

GROUNDING_HITS = 6
MAX_EMBED_INPUTS = 256


# -- the backend the endpoint talks to ------------------------------------------------------


@dataclass
class ChatCall:
    """One chat as the backend receives it."""

    caller: Caller
    model: str                      # class or provider:model, as the caller named it
    messages: list[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    memory: list[dict[str, Any]] = field(default_factory=list)  # hits from MemoryGateway.search
    tools: list[Tool] = field(default_factory=list)  # the caller's functions (it runs them)
    # How sensitive the caller says its own messages are (None: the rules' default). Memory
    # items keep their own tags whatever this says.
    prompt_privacy: str | None = None


@dataclass
class ChatStream:
    """A routed chat: where it runs, the memory items it carries, and its events."""

    model: str                      # provider:model that answers
    route: dict[str, Any]
    events: AsyncIterator[StreamEvent]
    used_items: list[int] = field(default_factory=list)


class ChatBackend(Protocol):
    async def model_ids(self, caller: Caller) -> list[str]: ...

    async def open(self, call: ChatCall) -> ChatStream: ...


# -- request bodies -----------------------------------------------------------------------


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class _Fn(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    arguments: str | None = None  # in an assistant message's tool call


class _ToolSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "function"
    function: _Fn


class _ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = ""
    type: str = "function"
    function: _Fn


class _Msg(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[_Part] | None = None
    name: str | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None

    def to_message(self) -> Message:
        calls = []
        for i, tc in enumerate(self.tool_calls or []):
            try:
                args = json.loads(tc.function.arguments or "{}")
            except ValueError:
                raise UserInputError(f"tool call {tc.id or i}: arguments are not JSON") from None
            calls.append(ToolCall(id=tc.id or f"call_{i}", name=tc.function.name,
                                  arguments=args if isinstance(args, dict) else {"value": args}))
        return Message(role=self.role, content=self.text(), tool_calls=calls,
                       tool_call_id=self.tool_call_id, name=self.name)

    def text(self) -> str:
        if isinstance(self.content, list):
            if any(p.type != "text" for p in self.content):
                raise UserInputError("only text message parts are supported")
            return "".join(p.text or "" for p in self.content)
        return self.content or ""


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=200)
    messages: list[_Msg] = Field(min_length=1, max_length=1000)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=1)
    stream_options: dict[str, Any] | None = None
    # The caller's own functions: passed to the model, and the model's calls handed back to
    # the caller to run. Deskmind runs none of them.
    tools: list[_ToolSpec] | None = Field(default=None, max_length=128)


class EmbedBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=200)
    input: str | list[str]
    encoding_format: str = "float"


# -- errors in OpenAI's shape --------------------------------------------------------------


def api_error(status: int, message: str, kind: str = "invalid_request_error",
              code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None,
                                   "code": code or kind}}, status_code=status, headers=headers)


def _fault_response(exc: DeskmindError) -> JSONResponse:
    from deskmind.core.routing.router import RoutingError
    from deskmind.core.runtimes.base import (
        FirstTokenTimeout, ModelNotFoundError, RateLimitedError, StallTimeout,
    )

    if isinstance(exc, PermissionDenied):
        return api_error(403, str(exc), "permission_error")
    if isinstance(exc, UserInputError):
        return api_error(400, str(exc))
    if isinstance(exc, ModelNotFoundError):
        return api_error(404, str(exc), "invalid_request_error", "model_not_found")
    if isinstance(exc, RateLimitedError):
        ra = exc.retry_after
        return api_error(429, str(exc), "rate_limit_exceeded",
                         headers={"retry-after": str(max(1, int(ra)))} if ra else None)
    if isinstance(exc, (FirstTokenTimeout, StallTimeout)):
        return api_error(504, str(exc), "timeout")
    if isinstance(exc, (RuntimeUnavailable, RoutingError)):
        # No model may answer (none running, or the rules allow none for this request).
        return api_error(503, str(exc), "service_unavailable", "no_route")
    return api_error(502, str(exc), "upstream_error")


async def _json_body(request: Request, model: type[BaseModel]) -> BaseModel | JSONResponse:
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return api_error(400, f"the request body is not valid JSON: {exc}", code="invalid_json")
    if not isinstance(data, dict):
        return api_error(400, "the request body must be a JSON object", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return api_error(400, f"{where}: {first['msg']}", code="invalid_request")


# -- the routes ----------------------------------------------------------------------------


def api_routes(gateway: Any) -> list[Route]:
    api = OpenAIApi(gateway)
    return [
        Route("/models", api.models, methods=["GET"]),
        Route("/chat/completions", api.chat, methods=["POST"]),
        Route("/embeddings", api.embeddings, methods=["POST"]),
    ]


class OpenAIApi:
    def __init__(self, gateway: Any) -> None:
        self.gw = gateway

    def _caller(self, request: Request) -> Caller:
        client = client_of(request.scope)
        assert client is not None, "the HTTP guard lets no request through without a client"
        fresh = self.gw.clients.get(client.name) or client
        return Caller(fresh, "api")

    def _require_ask(self, caller: Caller, action: str, args: dict[str, Any]) -> None:
        self.gw.service.require_granted(caller, action, args)
        if not caller.client.effective_scopes().ask:
            raise self.gw.service._deny(caller, action, args,
                                        f"client '{caller.name}' may not use the model runtimes")

    async def models(self, request: Request) -> Response:
        caller = self._caller(request)
        ids: list[str] = []
        if self.gw.chat is not None:
            try:
                ids = await self.gw.chat.model_ids(caller)
            except DeskmindError as exc:
                log.warning("model list unavailable: %s", exc)
        ids.append(self.gw.core.settings.embedder.model_id)
        self.gw.audit.record(caller.name, "api", "list_models", result_size=len(ids))
        return JSONResponse({"object": "list", "data": [
            {"id": i, "object": "model", "created": 0, "owned_by": "deskmind"}
            for i in dict.fromkeys(ids)]})

    async def chat(self, request: Request) -> Response:
        caller = self._caller(request)
        body = await _json_body(request, ChatBody)
        if isinstance(body, JSONResponse):
            return body
        assert isinstance(body, ChatBody)
        args = {"model": body.model, "messages": len(body.messages), "stream": body.stream}
        try:
            self._require_ask(caller, "chat", args)
            messages = [m.to_message() for m in body.messages]
            tools = [Tool(t.function.name, t.function.description, t.function.parameters)
                     for t in body.tools or [] if t.type == "function"]
            if self.gw.chat is None:
                raise RuntimeUnavailable("no model runtime pipeline is set up on this gateway")
            memory = await self._ground(caller, body, messages)
            opt = (body.model_extra or {}).get("deskmind") or {}
            prompt_privacy = opt.get("prompt_privacy")
            if prompt_privacy is not None and prompt_privacy not in PRIVACY_LEVELS:
                raise UserInputError(f"deskmind.prompt_privacy must be one of {', '.join(PRIVACY_LEVELS)}")
            call = ChatCall(caller=caller, model=body.model, messages=messages,
                            temperature=body.temperature,
                            max_tokens=body.max_completion_tokens or body.max_tokens, memory=memory,
                            prompt_privacy=prompt_privacy, tools=tools)
            stream = await self.gw.chat.open(call)
        except DeskmindError as exc:
            if not isinstance(exc, PermissionDenied):
                self.gw.audit.record(caller.name, "api", "chat", args=args, decision="failed",
                                     detail=str(exc))
            return _fault_response(exc)
        stream = self._audited(caller, args, stream)
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(_sse(cid, body.model, stream, include_usage),
                                     media_type="text/event-stream",
                                     headers={"cache-control": "no-cache",
                                              "x-deskmind-route": stream.model})
        return await _collect(cid, body.model, stream)

    def _audited(self, caller: Caller, args: dict[str, Any], stream: ChatStream) -> ChatStream:
        """The stream, recorded in the audit log once it ends (so the entry has the answer's
        size and how it ended, and nothing is written before the first token)."""
        audit = self.gw.audit
        inner = stream.events

        async def events() -> AsyncIterator[StreamEvent]:
            chars, decision, why = 0, "allowed", f"routed to {stream.model}"
            try:
                async for ev in inner:
                    if ev.kind == "token":
                        chars += len(ev.text)
                    yield ev
            except DeskmindError as exc:
                decision, why = "failed", f"{why}; failed mid-answer: {exc}"
                raise
            except (asyncio.CancelledError, GeneratorExit):
                why += "; the caller went away before the end"
                raise
            finally:
                audit.record(caller.name, "api", "chat", args=args, decision=decision, detail=why,
                             result_size=chars, items=[f"chunk:{i}" for i in stream.used_items])

        return dataclasses.replace(stream, events=events())

    async def _ground(self, caller: Caller, body: ChatBody, messages: list[Message]) -> list[dict[str, Any]]:
        scopes = caller.client.effective_scopes()
        opt = (body.model_extra or {}).get("deskmind") or {}
        if not scopes.ground or scopes.read == "none" or opt.get("memory") is False:
            return []
        query = next((m.content for m in reversed(messages) if m.role == "user"), "")
        if not query.strip():
            return []
        # Earlier conversations are not sources (a model would end up quoting itself).
        search = anyio.to_thread.run_sync(
            lambda: self.gw.service.search(caller, query[:2000], GROUNDING_HITS,
                                           exclude_kinds=("conversation",)),
            limiter=self.gw.workers)
        warm = getattr(self.gw.chat, "warm", None)
        if warm is None:
            return (await search)["results"]
        # Learn what is running while memory is searched.
        found, _ = await asyncio.gather(search, warm())
        return found["results"]

    async def embeddings(self, request: Request) -> Response:
        caller = self._caller(request)
        body = await _json_body(request, EmbedBody)
        if isinstance(body, JSONResponse):
            return body
        assert isinstance(body, EmbedBody)
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        args = {"model": body.model, "inputs": len(texts)}
        try:
            self._require_ask(caller, "embeddings", args)
        except DeskmindError as exc:
            return _fault_response(exc)
        local = self.gw.core.settings.embedder.model_id
        if body.model not in (local, "embed", "deskmind-embed"):
            return api_error(404, f"embedding model '{body.model}' is not served here: use "
                                  f"'{local}' (the local embedder)", code="model_not_found")
        if not texts or len(texts) > MAX_EMBED_INPUTS:
            return api_error(400, f"input must hold 1 to {MAX_EMBED_INPUTS} texts")
        if body.encoding_format not in ("float", "base64"):
            return api_error(400, "encoding_format must be float or base64")
        emb = self.gw.core.embedder()
        vecs = await anyio.to_thread.run_sync(lambda: emb.embed(texts), limiter=self.gw.workers)
        data = []
        for i, v in enumerate(vecs):
            arr = np.asarray(v, dtype=np.float32)
            value: Any = (base64.b64encode(arr.tobytes()).decode() if body.encoding_format == "base64"
                          else arr.tolist())
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(len(t.split()) for t in texts)
        self.gw.audit.record(caller.name, "api", "embeddings", args=args, result_size=len(data))
        return JSONResponse({"object": "list", "data": data, "model": local,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


class RuntimeUnavailable(DeskmindError):
    exit_code = 5


def _chunk(cid: str, model: str, created: int, delta: dict[str, Any],
           finish: str | None = None) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def _sse(cid: str, model: str, stream: ChatStream, include_usage: bool) -> AsyncIterator[bytes]:
    created = int(time.time())
    usage = None
    finish = "stop"

    def frame(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"

    yield frame(_chunk(cid, model, created, {"role": "assistant", "content": ""}))
    try:
        async for ev in stream.events:
            if ev.kind == "token" and ev.text:
                yield frame(_chunk(cid, model, created, {"content": ev.text}))
            elif ev.kind == "tool_calls":
                yield frame(_chunk(cid, model, created, {"tool_calls": [
                    {"index": i, **_wire_call(c)} for i, c in enumerate(ev.tool_calls)]}))
                finish = "tool_calls"
            elif ev.kind == "done":
                usage = ev.usage
                finish = finish if finish == "tool_calls" else (ev.finish_reason or "stop")
    except DeskmindError as exc:
        # Headers are gone already: the error travels in the stream, as OpenAI's does.
        log.warning("stream failed: %s", exc)
        yield frame({"error": {"message": str(exc), "type": "upstream_error", "code": "upstream_error"}})
        return
    last = _chunk(cid, model, created, {}, finish)
    yield frame(last)
    if include_usage:
        u = _usage(usage)
        yield frame({"id": cid, "object": "chat.completion.chunk", "created": created,
                     "model": model, "choices": [], "usage": u})
    yield b"data: [DONE]\n\n"


async def _collect(cid: str, model: str, stream: ChatStream) -> JSONResponse:
    parts: list[str] = []
    calls: list[dict[str, Any]] = []
    usage = None
    finish = "stop"
    try:
        async for ev in stream.events:
            if ev.kind == "token":
                parts.append(ev.text)
            elif ev.kind == "tool_calls":
                calls += [_wire_call(c) for c in ev.tool_calls]
            elif ev.kind == "done":
                usage = ev.usage
                finish = ev.finish_reason or "stop"
    except DeskmindError as exc:
        return _fault_response(exc)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(parts)}
    if calls:
        message["tool_calls"] = calls
        finish = "tool_calls"
    return JSONResponse({
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(usage), "deskmind": {"route": stream.route,
                                             "memory_items": stream.used_items},
    })


def _wire_call(c: ToolCall) -> dict[str, Any]:
    return {"id": c.id, "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}


def _usage(u: Any) -> dict[str, int]:
    p = (getattr(u, "prompt_tokens", None) or 0) if u else 0
    c = (getattr(u, "completion_tokens", None) or 0) if u else 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
