"""What every model runtime speaks: messages, stream events, model descriptions, faults.

A runtime streams :class:`StreamEvent` objects from :meth:`Runtime.chat`; cancelling the
consuming task (``asyncio`` cancellation) closes the underlying HTTP stream at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol, Sequence, runtime_checkable

from deskmind.core.errors import DeskmindError, UserInputError

log = logging.getLogger(__name__)

from deskmind.core.routing.zones import ZONES  # noqa: E402,F401  (re-exported)


# -- faults: each a specific, actionable error ------------------------------------------


class RuntimeFault(DeskmindError):
    """Base of every runtime fault. ``retryable`` faults may move on to the next candidate."""

    exit_code = 5
    retryable = True

    def __init__(self, message: str, *, provider: str = "", url: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.url = url


class RuntimeConnectError(RuntimeFault):
    """Nothing answered at the runtime's address (refused, unresolvable, connect timeout)."""


class FirstTokenTimeout(RuntimeFault):
    """The runtime accepted the request but produced no output in time."""


class StallTimeout(RuntimeFault):
    """The stream started, then stopped producing output for too long."""


class RuntimeHTTPError(RuntimeFault):
    """The runtime answered with an HTTP error; the message carries the server's own words."""

    def __init__(self, message: str, *, status: int, provider: str = "", url: str = "") -> None:
        super().__init__(message, provider=provider, url=url)
        self.status = status
        # A 4xx other than 408/429 is about the request itself: another candidate may still
        # work (another model), so it stays retryable; auth failures are not.
        self.retryable = status not in (401, 403)


class RateLimitedError(RuntimeHTTPError):
    """HTTP 429. ``retry_after`` is the server's advice in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None, provider: str = "",
                 url: str = "") -> None:
        super().__init__(message, status=429, provider=provider, url=url)
        self.retry_after = retry_after


class MalformedStreamError(RuntimeFault):
    """A line or event of the stream could not be parsed in the runtime's protocol."""


class StreamTruncatedError(RuntimeFault):
    """The stream ended (or the server went away) before the runtime said it was done."""


class ModelNotFoundError(RuntimeFault):
    """The runtime is up but does not have the model asked for."""


class UnsupportedParameter(RuntimeFault, UserInputError):
    """The request asks for something this runtime cannot do (a sampling parameter, a forced
    tool): refused before anything is sent, rather than answered without it."""

    retryable = False


# -- requests and events -----------------------------------------------------------------


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Message:
    role: str  # system | user | assistant | tool
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


@dataclass
class Tool:
    """A function the model may call, described by a JSON schema for its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class EgressContext:
    """Why a request is being sent, for the egress ledger: the rule and memory items carried."""

    rule: str = ""
    item_ids: Sequence[int] = ()


@dataclass
class Sampling:
    """The rest of an OpenAI-style request's options. Each runtime maps what it can and
    refuses the others (:func:`refuse_unsupported`) instead of ignoring them."""

    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    response_format: dict[str, Any] | None = None  # {"type": "text" | "json_object" | "json_schema", ...}
    tool_choice: str | dict[str, Any] | None = None  # "auto" | "none" | "required" | a named function
    user: str | None = None

    def given(self) -> list[str]:
        return [k for k, v in vars(self).items() if v not in (None, [])]

    def json_schema(self) -> dict[str, Any] | None:
        """The schema of a ``json_schema`` response format (``{}`` for ``json_object``)."""
        rf = self.response_format or {}
        if rf.get("type") == "json_object":
            return {}
        if rf.get("type") == "json_schema":
            return (rf.get("json_schema") or {}).get("schema") or {}
        return None


@dataclass
class ChatRequest:
    model: str
    messages: list[Message]
    tools: list[Tool] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    num_ctx: int | None = None  # Ollama: computed from the prompt when None
    egress: EgressContext = field(default_factory=EgressContext)
    # A JSON schema the answer must follow. Runtimes whose ``structured_output`` is True
    # constrain decoding to it (llama.cpp grammars, Ollama ``format``, OpenAI
    # ``response_format``); the others send the request without it, and the caller parses.
    response_schema: dict[str, Any] | None = None
    # A GBNF grammar (llama.cpp's) the answer must follow. Only runtimes whose
    # ``grammar_output`` is True are sent one; the ask pipeline checks before it sets it.
    grammar: str | None = None
    sampling: Sampling = field(default_factory=Sampling)

    def json_schema(self) -> dict[str, Any] | None:
        """The schema decoding must follow: the caller's ``response_schema``, else what the
        client asked for in ``response_format`` (``{}`` for plain JSON), else None."""
        if self.response_schema is not None:
            return self.response_schema
        return self.sampling.json_schema()


def refuse_unsupported(runtime: str, kind: str, req: ChatRequest, unsupported: list[str]) -> None:
    """Raise :class:`UnsupportedParameter` naming what ``runtime`` cannot honour."""
    if unsupported:
        raise UnsupportedParameter(
            f"{runtime} ({kind}) cannot honour {', '.join(unsupported)}: leave "
            f"{'it' if len(unsupported) == 1 else 'them'} out or ask for a model on an "
            "OpenAI-compatible server", provider=runtime)


def plain_tool_choice(choice: str | dict[str, Any] | None) -> bool:
    """A tool choice every runtime honours by default (the model decides, or no tools)."""
    return choice in (None, "auto", "none")


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class StreamEvent:
    """One piece of a streamed answer: ``token`` text, ``tool_calls`` or the final ``done``."""

    kind: str  # token | tool_calls | done
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None


@dataclass
class ModelInfo:
    provider: str
    name: str
    context_length: int | None = None
    loaded: bool = False
    size: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "name": self.name, "context_length": self.context_length,
                "loaded": self.loaded, "size": self.size, "details": self.details}


@dataclass
class Timeouts:
    """Connect, first output, and gap between outputs (seconds)."""

    connect: float = 3.0
    first_token: float = 120.0  # a cold model load on a CPU can take a while
    stall: float = 60.0
    request: float = 30.0  # non-streaming calls (model lists, embeddings)


@runtime_checkable
class Runtime(Protocol):
    name: str  # the provider name from the routing config
    kind: str  # ollama | openai | anthropic | llamacpp
    zone: str
    structured_output: bool  # whether ChatRequest.response_schema constrains the answer

    async def list_models(self) -> list[ModelInfo]: ...

    def chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]: ...

    async def available(self) -> bool: ...
