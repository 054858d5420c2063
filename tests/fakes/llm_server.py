"""A loopback HTTP server that speaks the real Ollama, OpenAI and Anthropic streaming protocols.

One server answers all three protocols (their paths do not overlap except ``/v1/models``),
on an ephemeral port, in a background thread::

    with FakeLLMServer(reply=Reply("Hello there")) as srv:
        url = srv.url                   # http://127.0.0.1:PORT
        ...
        srv.received                    # every request: method, path, headers, body bytes

``on_receive(received)`` runs the moment a request has arrived, before it is answered; what it
returns is kept as ``received.probe`` (e.g. whether the egress ledger already held a row for
exactly these bytes).

Replies stream token by token with chunked transfer encoding, exactly as the real servers do
(NDJSON for Ollama's /api/chat, SSE for /v1/chat/completions and /v1/messages). Fault modes:
``slow_first_byte``, ``stall_after``/``stall_seconds``, ``disconnect_after``,
``malformed_after``, ``truncate_after`` (after N token frames the stream ends cleanly, with no
finish frame and no end marker: no Ollama ``done``, no OpenAI ``[DONE]``, no Anthropic
``message_stop``), ``error_after`` (an error event in the protocol's own shape after N tokens),
``status`` (e.g. 500) and ``status=429`` with ``retry_after``; ``fail_times`` limits a status
fault to the first N chat requests.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


OLLAMA_PROMPT_TOKENS = 10  # prompt_eval_count in Ollama's last line
OPENAI_PROMPT_TOKENS = 12  # usage.prompt_tokens when a client asks for usage


@dataclass
class Reply:
    text: str = "Hello from the fake runtime."
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def tokens(self) -> list[str]:
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)] if self.text else []


@dataclass
class Faults:
    slow_first_byte: float = 0.0
    token_delay: float = 0.0
    stall_after: int | None = None
    stall_seconds: float = 0.0
    disconnect_after: int | None = None
    malformed_after: int | None = None
    truncate_after: int | None = None
    error_after: int | None = None
    status: int | None = None
    retry_after: float | None = None
    fail_times: int | None = None
    message: str = "the fake server was told to fail"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    probe: Any = None  # what on_receive returned for this request

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


class _HTTPServer(ThreadingHTTPServer):
    """A client of a fault-mode server hangs up on purpose (timeouts, cancels, a 401 answered
    before the body was read), and the handler's next read or write then fails, often after its
    test has ended: such socket errors are kept on the fake (``hung_up``) instead of printed into
    whichever test captures stderr at the time. Any other handler error is still printed."""

    hung_up: list[BaseException]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # reset, broken pipe, timed out: the socket's, not ours
            self.hung_up.append(exc)
        else:
            super().handle_error(request, client_address)


class FakeLLMServer:
    def __init__(self, *, reply: Reply | None = None, script: Callable[[dict], Reply] | None = None,
                 models: list[str] | None = None, context_length: int = 8192,
                 faults: Faults | None = None, require_key: str | None = None,
                 embed_dim: int = 8, host: str = "127.0.0.1", port: int = 0,
                 on_receive: Callable[[Received], Any] | None = None,
                 v1_context: str | None = None) -> None:
        self.reply = reply or Reply()
        self.script = script
        self.models = models or ["fake-model:1b"]
        self.context_length = context_length
        self.faults = faults or Faults()
        self.require_key = require_key
        self.embed_dim = embed_dim
        self.on_receive = on_receive
        # How /v1/models reports context_length, as servers do: None (not at all, like
        # OpenAI), "max_context_length" (LM Studio), "max_model_len" (vLLM) or "meta"
        # (llama.cpp server: meta.n_ctx_train).
        self.v1_context = v1_context
        self.received: list[Received] = []
        self._failed = 0
        self._lock = threading.Lock()
        self._httpd = _HTTPServer((host, port), _make_handler(self))
        self._httpd.hung_up = self.hung_up = []
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeLLMServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"fake-llm-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def chat_requests(self) -> list[Received]:
        return [r for r in self.received if r.path in ("/api/chat", "/v1/chat/completions", "/v1/messages")]

    def next_reply(self, body: dict) -> Reply:
        return self.script(body) if self.script else self.reply

    def take_fault(self) -> bool:
        with self._lock:
            f = self.faults
            if f.status is None:
                return False
            if f.fail_times is not None and self._failed >= f.fail_times:
                return False
            self._failed += 1
            return True


def _make_handler(srv: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def setup(self) -> None:
            super().setup()
            # Real servers (Go's net/http for Ollama, uvicorn, llama.cpp) disable Nagle; without
            # this, each small streamed chunk can wait ~40 ms for a delayed ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        # -- plumbing -------------------------------------------------------------------

        def _body(self) -> bytes:
            n = int(self.headers.get("content-length") or 0)
            return self.rfile.read(n) if n else b""

        def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _start_stream(self, ctype: str) -> None:
            self.send_response(200)
            self.send_header("content-type", ctype)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _end_stream(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _drop(self) -> None:
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        # -- routing --------------------------------------------------------------------

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            body = self._body()
            rec = Received(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            if srv.on_receive is not None:
                rec.probe = srv.on_receive(rec)
            srv.received.append(rec)
            if srv.require_key and not self._authorised():
                self._send_json(401, {"error": {"message": "Incorrect API key provided",
                                                "type": "invalid_request_error"}})
                return
            data = json.loads(body) if body else {}
            p = self.path
            if p == "/api/version":
                return self._send_json(200, {"version": "0.9.0"})
            if p == "/api/tags":
                return self._send_json(200, {"models": [
                    {"name": m, "model": m, "size": 1_000_000, "details": {"family": "fake"}}
                    for m in srv.models]})
            if p == "/api/ps":
                return self._send_json(200, {"models": [
                    {"name": srv.models[0], "model": srv.models[0], "size": 1_000_000,
                     "context_length": 4096}]})
            if p == "/api/show":
                if data.get("model") not in srv.models:
                    return self._send_json(404, {"error": f"model '{data.get('model')}' not found"})
                return self._send_json(200, {
                    "details": {"family": "fake", "parameter_size": "1B"},
                    "model_info": {"general.architecture": "fake",
                                   "fake.context_length": srv.context_length},
                    "capabilities": ["completion", "tools"]})
            if p in ("/api/embed", "/v1/embeddings"):
                texts = data.get("input")
                texts = [texts] if isinstance(texts, str) else texts
                vecs = [_vector(t, srv.embed_dim) for t in texts]
                if p == "/api/embed":
                    return self._send_json(200, {"model": data.get("model"), "embeddings": vecs})
                return self._send_json(200, {"object": "list", "data": [
                    {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vecs)]})
            if p == "/v1/models":
                return self._send_json(200, {"object": "list", "data": [
                    {"id": m, "object": "model", "owned_by": "fake", "display_name": m,
                     **_v1_context(srv.v1_context, srv.context_length)}
                    for m in srv.models]})
            if p in ("/api/chat", "/v1/chat/completions", "/v1/messages"):
                return self._chat(p, data)
            self._send_json(404, {"error": f"no route {p}"})

        def _authorised(self) -> bool:
            key = srv.require_key
            return (self.headers.get("authorization") == f"Bearer {key}"
                    or self.headers.get("x-api-key") == key)

        # -- chat -----------------------------------------------------------------------

        def _chat(self, path: str, data: dict) -> None:
            f = srv.faults
            if f.slow_first_byte:
                time.sleep(f.slow_first_byte)
            if srv.take_fault():
                headers = {"retry-after": str(f.retry_after)} if f.retry_after is not None else {}
                if path == "/api/chat":
                    return self._send_json(f.status, {"error": f.message}, headers)
                return self._send_json(f.status, {"error": {"message": f.message, "type": "server_error"}}, headers)
            if data.get("model") not in srv.models:
                msg = f"model '{data.get('model')}' not found"
                return self._send_json(404, {"error": msg if path == "/api/chat" else {"message": msg}})
            reply = srv.next_reply(data)
            kind = "ollama" if path == "/api/chat" else ("openai" if path == "/v1/chat/completions" else "anthropic")
            frames = getattr(self, f"_frames_{kind}")(data, reply)
            self._start_stream("application/x-ndjson" if kind == "ollama" else "text/event-stream")
            sent = 0
            for frame, is_token in frames:
                if f.truncate_after is not None and sent >= f.truncate_after:
                    break  # a clean end: the chunked stream is closed properly below
                if is_token:
                    if f.error_after is not None and sent == f.error_after:
                        self._chunk(_error_frame(kind, f.message))
                        return self._end_stream()
                    if f.disconnect_after is not None and sent >= f.disconnect_after:
                        return self._drop()
                    if f.malformed_after is not None and sent == f.malformed_after:
                        self._chunk(b"{not json\n" if kind == "ollama" else b"data: {not json\n\n")
                    if f.stall_after is not None and sent == f.stall_after:
                        time.sleep(f.stall_seconds)
                    if f.token_delay:
                        time.sleep(f.token_delay)
                    sent += 1
                try:
                    self._chunk(frame)
                except (BrokenPipeError, ConnectionResetError):
                    return
            self._end_stream()

        def _frames_ollama(self, data: dict, reply: Reply) -> list[tuple[bytes, bool]]:
            model = data["model"]
            out = []
            def line(obj: dict) -> bytes:
                return json.dumps(obj).encode() + b"\n"
            if reply.tool_calls:
                out.append((line({"model": model, "created_at": _now(), "message": {
                    "role": "assistant", "content": "", "tool_calls": [
                        {"function": {"name": n, "arguments": a}} for n, a in reply.tool_calls]},
                    "done": False}), True))
            for tok in reply.tokens():
                out.append((line({"model": model, "created_at": _now(),
                                  "message": {"role": "assistant", "content": tok}, "done": False}), True))
            out.append((line({"model": model, "created_at": _now(),
                              "message": {"role": "assistant", "content": ""}, "done": True,
                              "done_reason": "stop", "total_duration": 1000, "prompt_eval_count": OLLAMA_PROMPT_TOKENS,
                              "eval_count": len(reply.tokens())}), False))
            return out

        def _frames_openai(self, data: dict, reply: Reply) -> list[tuple[bytes, bool]]:
            cid, model = f"chatcmpl-{uuid.uuid4().hex[:10]}", data["model"]
            def ev(delta: dict, finish: str | None = None) -> bytes:
                obj = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                       "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                return b"data: " + json.dumps(obj).encode() + b"\n\n"
            out = [(ev({"role": "assistant", "content": ""}), False)]
            for tok in reply.tokens():
                out.append((ev({"content": tok}), True))
            for i, (name, args) in enumerate(reply.tool_calls):
                raw = json.dumps(args)
                half = len(raw) // 2
                out.append((ev({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                                "function": {"name": name, "arguments": raw[:half]}}]}), True))
                out.append((ev({"tool_calls": [{"index": i, "function": {"arguments": raw[half:]}}]}), True))
            out.append((ev({}, "tool_calls" if reply.tool_calls else "stop"), False))
            if (data.get("stream_options") or {}).get("include_usage"):
                # As OpenAI does: one more chunk, with no choices, carrying the token counts.
                n = len(reply.tokens())
                usage = {"prompt_tokens": OPENAI_PROMPT_TOKENS, "completion_tokens": n,
                         "total_tokens": OPENAI_PROMPT_TOKENS + n}
                out.append((b"data: " + json.dumps({
                    "id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": model, "choices": [], "usage": usage}).encode() + b"\n\n", False))
            out.append((b"data: [DONE]\n\n", False))
            return out

        def _frames_anthropic(self, data: dict, reply: Reply) -> list[tuple[bytes, bool]]:
            def ev(name: str, obj: dict) -> bytes:
                return f"event: {name}\ndata: ".encode() + json.dumps({"type": name, **obj}).encode() + b"\n\n"
            out = [(ev("message_start", {"message": {
                "id": f"msg_{uuid.uuid4().hex[:10]}", "type": "message", "role": "assistant",
                "model": data["model"], "content": [], "stop_reason": None,
                "usage": {"input_tokens": 10, "output_tokens": 1}}}), False),
                (ev("ping", {}), False)]
            idx = 0
            if reply.text:
                out.append((ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}), False))
                for tok in reply.tokens():
                    out.append((ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": tok}}), True))
                out.append((ev("content_block_stop", {"index": 0}), False))
                idx = 1
            for j, (name, args) in enumerate(reply.tool_calls):
                i = idx + j
                raw = json.dumps(args)
                out.append((ev("content_block_start", {"index": i, "content_block": {
                    "type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {}}}), False))
                out.append((ev("content_block_delta", {"index": i, "delta": {"type": "input_json_delta", "partial_json": raw[:len(raw) // 2]}}), True))
                out.append((ev("content_block_delta", {"index": i, "delta": {"type": "input_json_delta", "partial_json": raw[len(raw) // 2:]}}), True))
                out.append((ev("content_block_stop", {"index": i}), False))
            out.append((ev("message_delta", {"delta": {"stop_reason": "tool_use" if reply.tool_calls else "end_turn",
                                                       "stop_sequence": None},
                                             "usage": {"output_tokens": len(reply.tokens())}}), False))
            out.append((ev("message_stop", {}), False))
            return out

    return Handler


def _v1_context(style: str | None, n: int) -> dict[str, Any]:
    if style is None:
        return {}
    if style == "meta":
        return {"meta": {"vocab_type": 2, "n_vocab": 32000, "n_ctx_train": n, "n_embd": 2048}}
    return {style: n}


def _error_frame(kind: str, message: str) -> bytes:
    """An error reported inside a stream that already started, as each server does it."""
    if kind == "ollama":
        return json.dumps({"error": message}).encode() + b"\n"
    if kind == "openai":
        return b"data: " + json.dumps({"error": {"message": message, "type": "server_error"}}).encode() + b"\n\n"
    return b"event: error\ndata: " + json.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": message}}).encode() + b"\n\n"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def _vector(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    v = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(dim)]
    norm = sum(x * x for x in v) ** 0.5 or 1.0
    return [x / norm for x in v]


def last_user_text(body: dict) -> str:
    """The last user message's text in any of the three protocols' request bodies."""
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            return " ".join(b.get("text", "") for b in c if isinstance(b, dict))
    return ""


def has_tool_result(body: dict) -> bool:
    for m in body.get("messages", []):
        if m.get("role") == "tool":
            return True
        c = m.get("content")
        if isinstance(c, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in c):
            return True
    return False


def main() -> None:
    """``python -m tests.fakes.llm_server --port 11434`` runs one in the foreground (manual and
    GUI testing); it prints its URL and serves until Ctrl-C."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--model", action="append", help="model name (repeatable)")
    ap.add_argument("--reply", default=Reply().text)
    ap.add_argument("--token-delay", type=float, default=0.03)
    ap.add_argument("--first-byte-delay", type=float, default=0.0)
    args = ap.parse_args()
    srv = FakeLLMServer(reply=Reply(args.reply), models=args.model, port=args.port,
                        faults=Faults(token_delay=args.token_delay, slow_first_byte=args.first_byte_delay))
    print(srv.url, flush=True)
    try:
        srv._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv._httpd.server_close()


if __name__ == "__main__":
    main()
