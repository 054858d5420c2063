"""An OpenAI-compatible endpoint on loopback: ``/v1/models``, ``/v1/chat/completions``
(streaming SSE and not) and ``/v1/embeddings``.

The model name picks a model class (``general``, ``fast``, ``coder``...) or a concrete
``provider:model``; the same routing rules as ``deskmind ask`` decide where it runs. When
the person allowed it for this client (scope ``ground``), the last user message is looked up
in memory (within the client's read ceiling) and the passages are added as numbered sources;
routing withholds any passage a zone may not see. The chat itself is delegated to a
:class:`ChatBackend` (routing + runtimes); :mod:`.openai_wire` holds the wire format.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol

import anyio
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from deskmind.core.errors import DeskmindError, UserInputError
from deskmind.core.gateway.http_guard import client_of
from deskmind.core.gateway.openai_wire import (
    ChatBody, EmbedBody, RuntimeUnavailable, api_error, collect, fault_response, json_body,
    sse_stream,
)
from deskmind.core.gateway.revocation import MAX_AGE, until_revoked
from deskmind.core.gateway.service import Caller, PermissionDenied
from deskmind.core.memory.models import PRIVACY_LEVELS
from deskmind.core.runtimes.base import Message, Sampling, StreamEvent, Tool

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
    sampling: Sampling = field(default_factory=Sampling)


@dataclass
class ChatStream:
    """A routed chat: where it runs, the memory items it carries, and its events."""

    model: str                      # provider:model that answers
    route: dict[str, Any]
    events: AsyncIterator[StreamEvent]
    used_items: list[int] = field(default_factory=list)


class ChatBackend(Protocol):
    async def model_ids(self, caller: Caller) -> list[str]: ...

    async def check(self, call: ChatCall) -> None: ...

    async def open(self, call: ChatCall) -> ChatStream: ...


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
        body = await json_body(request, ChatBody)
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
            opt = (body.model_extra or {}).get("deskmind") or {}
            prompt_privacy = opt.get("prompt_privacy")
            if prompt_privacy is not None and prompt_privacy not in PRIVACY_LEVELS:
                raise UserInputError(f"deskmind.prompt_privacy must be one of {', '.join(PRIVACY_LEVELS)}")
            call = ChatCall(caller=caller, model=body.model, messages=messages,
                            temperature=body.temperature,
                            max_tokens=body.max_completion_tokens or body.max_tokens,
                            prompt_privacy=prompt_privacy, tools=tools, sampling=body.sampling())
            # A chat refused whatever memory would add is refused before memory is searched.
            await self.gw.chat.check(call)
            call.memory = await self._ground(caller, body, messages)
            stream = await self.gw.chat.open(call)
        except DeskmindError as exc:
            if not isinstance(exc, PermissionDenied):  # a denial was recorded where it was made
                from deskmind.core.routing.router import RouteRefused

                self.gw.audit.record(caller.name, "api", "chat", args=args,
                                     decision="denied" if isinstance(exc, RouteRefused) else "failed",
                                     detail=str(exc))
            return fault_response(exc)
        stream = self._audited(caller, args, self._revocable(caller, stream))
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(sse_stream(cid, body.model, stream, include_usage),
                                     media_type="text/event-stream",
                                     headers={"cache-control": "no-cache",
                                              "x-deskmind-route": stream.model})
        return await collect(cid, body.model, stream)

    def _revocable(self, caller: Caller, stream: ChatStream) -> ChatStream:
        """The stream, cut within about a second when the client's grant is withdrawn."""
        clients, name = self.gw.clients, caller.name

        def still_granted() -> bool:
            c = clients.current(name, MAX_AGE)
            return c is not None and c.granted

        return dataclasses.replace(stream, events=until_revoked(stream.events, still_granted, name))

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
        # Earlier conversations are not sources (a model would end up quoting itself): the
        # search leaves them out.
        search = anyio.to_thread.run_sync(
            lambda: self.gw.service.search(caller, query[:2000], GROUNDING_HITS),
            limiter=self.gw.workers)
        warm = getattr(self.gw.chat, "warm", None)
        if warm is None:
            return (await search)["results"]
        # Learn what is running while memory is searched.
        found, _ = await asyncio.gather(search, warm())
        return found["results"]

    async def embeddings(self, request: Request) -> Response:
        caller = self._caller(request)
        body = await json_body(request, EmbedBody)
        if isinstance(body, JSONResponse):
            return body
        assert isinstance(body, EmbedBody)
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        args = {"model": body.model, "inputs": len(texts)}
        try:
            self._require_ask(caller, "embeddings", args)
        except DeskmindError as exc:
            return fault_response(exc)
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
