"""The OpenAI wire format: request bodies, errors in OpenAI's shape, and the response
writers (a JSON completion, or server-sent event chunks ending with ``[DONE]``)."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any, AsyncIterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse

from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.gateway.service import PermissionDenied
from deskmind.core.runtimes.base import Message, Sampling, ToolCall

log = logging.getLogger(__name__)


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


class _ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class _NamedFn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class _NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: _NamedFn


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
    # Passed to the runtime that answers, or refused by it with a 400 naming what it lacks.
    stop: str | list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        default=None, max_length=4)
    seed: int | None = None
    top_p: float | None = Field(default=None, ge=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: _ResponseFormat | None = None
    tool_choice: Literal["auto", "none", "required"] | _NamedToolChoice | None = None
    user: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _tool_choice_needs_tools(self) -> "ChatBody":
        if self.tool_choice not in (None, "auto", "none") and not self.tools:
            raise ValueError("tool_choice names a tool to call, but the request has no tools")
        return self

    def sampling(self) -> Sampling:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        choice = (self.tool_choice.model_dump() if isinstance(self.tool_choice, BaseModel)
                  else self.tool_choice)
        return Sampling(stop=stop, seed=self.seed, top_p=self.top_p,
                        frequency_penalty=self.frequency_penalty,
                        presence_penalty=self.presence_penalty,
                        response_format=(self.response_format.model_dump(exclude_none=True)
                                         if self.response_format else None),
                        tool_choice=choice, user=self.user)


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


def fault_response(exc: DeskmindError) -> JSONResponse:
    from deskmind.core.routing.router import RouteRefused, RoutingError, UnknownModel
    from deskmind.core.runtimes.base import (
        FirstTokenTimeout, ModelNotFoundError, RateLimitedError, StallTimeout,
    )

    from deskmind.core.gateway.revocation import ClientRevoked

    if isinstance(exc, (PermissionDenied, RouteRefused, ClientRevoked)):
        # RouteRefused: the rules forbid the model asked for (not a runtime being down).
        return api_error(403, str(exc), "permission_error")
    if isinstance(exc, UserInputError):
        return api_error(400, str(exc))
    if isinstance(exc, (ModelNotFoundError, UnknownModel)):
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


async def json_body(request: Request, model: type[BaseModel]) -> BaseModel | JSONResponse:
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


# -- responses -----------------------------------------------------------------------------


class RuntimeUnavailable(DeskmindError):
    exit_code = 5


def _chunk(cid: str, model: str, created: int, delta: dict[str, Any],
           finish: str | None = None) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def sse_stream(cid: str, model: str, stream: Any, include_usage: bool) -> AsyncIterator[bytes]:
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
                    {"index": i, **wire_call(c)} for i, c in enumerate(ev.tool_calls)]}))
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


async def collect(cid: str, model: str, stream: Any) -> JSONResponse:
    parts: list[str] = []
    calls: list[dict[str, Any]] = []
    usage = None
    finish = "stop"
    try:
        async for ev in stream.events:
            if ev.kind == "token":
                parts.append(ev.text)
            elif ev.kind == "tool_calls":
                calls += [wire_call(c) for c in ev.tool_calls]
            elif ev.kind == "done":
                usage = ev.usage
                finish = ev.finish_reason or "stop"
    except DeskmindError as exc:
        return fault_response(exc)
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


def wire_call(c: ToolCall) -> dict[str, Any]:
    return {"id": c.id, "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}


def _usage(u: Any) -> dict[str, int]:
    p = (getattr(u, "prompt_tokens", None) or 0) if u else 0
    c = (getattr(u, "completion_tokens", None) or 0) if u else 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
