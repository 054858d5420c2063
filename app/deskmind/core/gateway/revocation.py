"""Ending a client's open streams when its grant is taken back.

A chat stream checks, between its events and while it waits for the next one, whether its
client still holds a grant; the grant is re-read from the clients table at most every
``MAX_AGE`` seconds (shared by all streams), so a revoke from the settings window, the CLI or
another process cuts the stream within about a second instead of letting it run to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator, Callable, TypeVar

from deskmind.core.errors import DeskmindError

log = logging.getLogger(__name__)

E = TypeVar("E")

POLL_SECONDS = 0.25
MAX_AGE = 0.5


class ClientRevoked(DeskmindError):
    """The client's grant was withdrawn while it was being answered."""


async def until_revoked(events: AsyncIterator[E], still_granted: Callable[[], bool], who: str,
                        poll: float = POLL_SECONDS) -> AsyncIterator[E]:
    """``events``, ended with :class:`ClientRevoked` as soon as ``still_granted()`` is false.
    The inner stream (and the runtime's HTTP stream under it) is closed at once."""
    it = events.__aiter__()
    watch = asyncio.ensure_future(_revoked(still_granted, poll))
    try:
        while True:
            step = asyncio.ensure_future(it.__anext__())
            await asyncio.wait({step, watch}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(BaseException):
                    await step
                log.info("client %s was revoked: its stream is cut", who)
                raise ClientRevoked(f"client '{who}' was revoked while it was being answered")
            try:
                ev = step.result()
            except StopAsyncIteration:
                return
            yield ev
            if watch.done():
                raise ClientRevoked(f"client '{who}' was revoked while it was being answered")
    finally:
        watch.cancel()
        close = getattr(it, "aclose", None)
        if close is not None:
            await close()


async def _revoked(still_granted: Callable[[], bool], poll: float) -> None:
    while still_granted():
        await asyncio.sleep(poll)
