"""The one HTTP road to every runtime: shared client, egress ledger, faults, timeouts.

Every request body is serialised here, so what the egress ledger hashes is byte for byte what
goes on the wire. A request to a provider outside the machine zone is refused when no ledger
is attached: nothing leaves the machine unrecorded.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Protocol, Sequence
from urllib.parse import urlsplit

import httpx

from deskmind.core.errors import DeskmindError
from deskmind.core.runtimes.base import (
    EgressContext, FirstTokenTimeout, RateLimitedError, RuntimeConnectError, RuntimeHTTPError,
    StallTimeout, StreamTruncatedError, Timeouts,
)
from deskmind.core.secrets import redact

log = logging.getLogger(__name__)


def make_client(timeouts: Timeouts | None = None) -> httpx.AsyncClient:
    """The shared client: one per process (or per event loop), reused by every runtime."""
    t = timeouts or Timeouts()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=t.connect, read=None, write=30.0, pool=10.0),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        # Never pick up proxies from the environment: a proxy would silently move machine-zone
        # traffic off the machine, past the routing rules and the ledger.
        trust_env=False,
    )


def encode_body(payload: Any) -> bytes:
    """The bytes of a JSON request body, exactly as sent (and as hashed by the ledger)."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


class EgressRecorder(Protocol):
    def record(self, *, provider: str, host: str, model: str, rule: str, body: bytes,
               item_ids: Sequence[int]) -> int: ...

    def finish(self, entry_id: int, *, bytes_in: int, status: str) -> None: ...


@dataclass
class Endpoint:
    provider: str
    base_url: str
    zone: str
    headers: dict[str, str]

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc


class Transport:
    """Sends JSON to one provider. Coroutines run on the caller's event loop."""

    def __init__(self, client: httpx.AsyncClient, endpoint: Endpoint, timeouts: Timeouts,
                 egress: EgressRecorder | None = None, max_retry_wait: float = 5.0) -> None:
        self.client = client
        self.ep = endpoint
        self.timeouts = timeouts
        self.egress = egress
        self.max_retry_wait = max_retry_wait

    def url(self, path: str) -> str:
        return self.ep.base_url.rstrip("/") + path

    # -- egress ----------------------------------------------------------------------

    async def _record(self, model: str, body: bytes, ctx: EgressContext | None) -> int | None:
        if self.ep.zone == "machine":
            return None
        if self.egress is None:
            raise DeskmindError(
                f"refusing to send to {self.ep.provider} ({self.ep.zone} zone) without an egress "
                "ledger: every request leaving this machine must be recorded first")
        ctx = ctx or EgressContext()
        # Written (and committed) before a single byte is sent.
        return await asyncio.to_thread(
            self.egress.record, provider=self.ep.provider, host=self.ep.host, model=model,
            rule=ctx.rule, body=body, item_ids=list(ctx.item_ids))

    async def _finish(self, entry: int | None, bytes_in: int, status: str) -> None:
        if entry is not None and self.egress is not None:
            await asyncio.to_thread(self.egress.finish, entry, bytes_in=bytes_in, status=status)

    # -- plain requests --------------------------------------------------------------

    async def get_json(self, path: str, *, timeout: float | None = None) -> Any:
        return await self._request("GET", path, None, "", None, timeout)

    async def post_json(self, path: str, payload: Any, *, model: str = "",
                        ctx: EgressContext | None = None, timeout: float | None = None) -> Any:
        return await self._request("POST", path, payload, model, ctx, timeout)

    async def _request(self, method: str, path: str, payload: Any, model: str,
                       ctx: EgressContext | None, timeout: float | None) -> Any:
        body = b"" if payload is None else encode_body(payload)
        for attempt in (0, 1):
            entry = await self._record(model, body, ctx)
            try:
                async with asyncio.timeout(timeout or self.timeouts.request):
                    resp = await self.client.request(
                        method, self.url(path), content=body or None, headers=self._headers(bool(body)))
            except BaseException as exc:
                await self._finish(entry, 0, type(exc).__name__)
                raise self._translate(exc, first=True) from None
            await self._finish(entry, resp.num_bytes_downloaded, str(resp.status_code))
            if resp.status_code < 400:
                try:
                    return resp.json()
                except ValueError:
                    raise RuntimeHTTPError(
                        f"{self.ep.provider} answered {path} with something that is not JSON",
                        status=resp.status_code, provider=self.ep.provider, url=self.url(path)) from None
            err = self._http_error(resp, resp.content)
            if not await self._should_retry(err, attempt):
                raise err
        raise AssertionError("unreachable")

    # -- streaming -------------------------------------------------------------------

    async def stream(self, path: str, payload: Any, *, model: str, ctx: EgressContext | None,
                     parse: Callable[[httpx.Response], AsyncIterator[Any]]) -> AsyncIterator[Any]:
        """POST ``payload`` and yield what ``parse(response)`` yields, under the first-token and
        stall timeouts. Faults surface as specific :class:`RuntimeFault` subclasses."""
        body = encode_body(payload)
        for attempt in (0, 1):
            entry = await self._record(model, body, ctx)
            status = "error"
            resp: httpx.Response | None = None
            t0 = time.monotonic()
            try:
                req = self.client.build_request("POST", self.url(path), content=body,
                                                headers=self._headers(True))
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation that races with a result, and Ctrl-C must always win.
                    async with asyncio.timeout(self.timeouts.first_token):
                        resp = await self.client.send(req, stream=True)
                except BaseException as exc:
                    status = type(exc).__name__
                    raise self._translate(exc, first=True) from None
                if resp.status_code >= 400:
                    raw = await resp.aread()
                    status = str(resp.status_code)
                    err = self._http_error(resp, raw)
                    if await self._should_retry(err, attempt):
                        continue
                    raise err
                items = parse(resp).__aiter__()
                first = True
                while True:
                    wait = (self.timeouts.first_token - (time.monotonic() - t0)) if first \
                        else self.timeouts.stall
                    try:
                        async with asyncio.timeout(max(wait, 0.001)):
                            item = await items.__anext__()
                    except StopAsyncIteration:
                        break
                    except BaseException as exc:
                        status = type(exc).__name__
                        raise self._translate(exc, first=first) from None
                    first = False
                    try:
                        yield item
                    except GeneratorExit:
                        status = "closed early"
                        raise
                status = "ok"
                return
            finally:
                if resp is not None:
                    await resp.aclose()
                await self._finish(entry, resp.num_bytes_downloaded if resp is not None else 0,
                                   status)

    # -- helpers ---------------------------------------------------------------------

    def _headers(self, has_body: bool) -> dict[str, str]:
        h = dict(self.ep.headers)
        if has_body:
            h["content-type"] = "application/json"
        return h

    async def _should_retry(self, err: RuntimeHTTPError, attempt: int) -> bool:
        # One polite retry when the server says how long to wait and it is short.
        if (attempt == 0 and isinstance(err, RateLimitedError) and err.retry_after is not None
                and err.retry_after <= self.max_retry_wait):
            log.info("%s rate-limited; retrying in %.1f s", self.ep.provider, err.retry_after)
            await asyncio.sleep(err.retry_after)
            return True
        return False

    def _translate(self, exc: BaseException, *, first: bool) -> BaseException:
        p, url = self.ep.provider, self.ep.base_url
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
            return exc
        if isinstance(exc, DeskmindError):
            return exc
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            what = "did not answer in time" if isinstance(exc, httpx.ConnectTimeout) else "refused the connection"
            return RuntimeConnectError(f"{p} at {url} {what}: is it running?", provider=p, url=url)
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            if first:
                return FirstTokenTimeout(
                    f"{p} produced no output within {self.timeouts.first_token:.0f} s "
                    "(the model may still be loading; try again or raise the first-token timeout)",
                    provider=p, url=url)
            return StallTimeout(f"{p} stopped producing output for {self.timeouts.stall:.0f} s "
                                "in the middle of an answer", provider=p, url=url)
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return StreamTruncatedError(
                f"{p} closed the connection before finishing its answer ({redact(str(exc)) or type(exc).__name__})",
                provider=p, url=url)
        if isinstance(exc, httpx.HTTPError):
            return RuntimeConnectError(f"{p} at {url}: {redact(str(exc)) or type(exc).__name__}",
                                       provider=p, url=url)
        return exc

    def _http_error(self, resp: httpx.Response, raw: bytes) -> RuntimeHTTPError:
        msg = _server_message(raw) or resp.reason_phrase or "no message"
        msg = redact(msg)[:400]
        p, url = self.ep.provider, str(resp.request.url)
        if resp.status_code == 429:
            ra = _retry_after(resp.headers)
            hint = f"; retry after {ra:.0f} s" if ra is not None else ""
            return RateLimitedError(f"{p} is rate-limiting requests (HTTP 429: {msg}){hint}",
                                    retry_after=ra, provider=p, url=url)
        return RuntimeHTTPError(f"{p} answered HTTP {resp.status_code}: {msg}",
                                status=resp.status_code, provider=p, url=url)


def _server_message(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:400]
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        return str(err.get("message") or err.get("detail") or json.dumps(err))
    if isinstance(data, dict) and "detail" in data and err is data:
        return str(data["detail"])
    return str(err)


def _retry_after(headers: httpx.Headers) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None
