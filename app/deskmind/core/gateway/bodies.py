"""Request bodies read whole, within a size cap, a deadline and a nesting limit, before any
endpoint sees them.

Every body the gateway accepts is a JSON document of at most a few MB, so the door reads it
completely first: a body over the cap (declared or streamed), one that stops arriving, or one
whose chunked framing breaks part-way never reaches MCP or the OpenAI endpoints, which would
otherwise fail half-way through reading it (and log a traceback for a client's mistake).
The endpoint then receives the same bytes in one message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import anyio
import numpy as np
from starlette.types import Message, Receive

DEFAULT_MAX_DEPTH = 64
DEFAULT_BODY_SECONDS = 30.0

# A JSON string (escapes included); possessive, so a pathological body cannot backtrack.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
# Each byte's step in nesting depth: +1 for [ and {, -1 for ] and }, 0 for the rest.
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


@dataclass(frozen=True)
class BodyRefused:
    """Why a body was not accepted; ``status`` None means the client went away (say nothing)."""

    status: int | None
    code: str
    message: str


GONE = BodyRefused(None, "disconnected", "the client went away while sending the request")


async def read_body(receive: Receive, limit: int, seconds: float) -> bytes | BodyRefused:
    """The whole body, or why not. ``receive`` is read until the body ends, the cap is
    passed, ``seconds`` go by, or the client disconnects (also how a broken chunked framing
    shows up here: the server answered 400 itself and dropped the connection)."""
    parts: list[bytes] = []
    size = 0
    with anyio.move_on_after(seconds):
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return GONE
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                return BodyRefused(413, "request_too_large",
                                   f"the request body is larger than {limit // 1024} KiB")
            parts.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(parts)
    return BodyRefused(408, "request_timeout",
                       f"the request body did not arrive within {seconds:g} s")


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` once, then passes through (so an endpoint that
    streams its answer still learns when the client disconnects)."""
    sent = False

    async def receive_again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


def json_depth(body: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest, without parsing it (so a body
    of a million ``[`` costs a scan, not a recursion). Brackets inside strings do not count;
    for text that is not JSON the figure is meaningless but bounded by its length."""
    if b"[" not in body and b"{" not in body:
        return 0
    data = np.frombuffer(_STRING.sub(b'""', body), dtype=np.uint8)
    return int(np.cumsum(_STEP[data], dtype=np.int32).max(initial=0))


def nesting_refusal(body: bytes, max_depth: int) -> BodyRefused | None:
    depth = json_depth(body)
    if depth <= max_depth:
        return None
    return BodyRefused(400, "invalid_json",
                       f"the JSON body nests {depth} levels deep; at most {max_depth} are accepted")
