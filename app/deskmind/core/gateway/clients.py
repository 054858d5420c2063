"""Outside clients of the gateway and what each may do.

Every MCP host or API caller is an agent with its own scopes. A client the person has not
granted gets nothing. HTTP clients prove who they are with a per-client bearer token (only
its SHA-256 is stored: a 256-bit random token needs no slow hash); a stdio client is named
by the ``--client NAME`` argument the person wrote into that client's config, which is
trustworthy because only the person's own programs can launch the process.

Grants live in the memory database so the tray app, the daemon and the command line see the
same clients; lookups are cached for a couple of seconds so a token check costs no query.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from deskmind.core.errors import UserInputError
from deskmind.core.memory.models import PRIVACY_LEVELS
from deskmind.core.memory.api import Memory

log = logging.getLogger(__name__)

TOKEN_PREFIX = "dmk_"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
READ_NONE = "none"
READ_LEVELS = (READ_NONE,) + PRIVACY_LEVELS
CACHE_SECONDS = 2.0
UNKNOWN_TOKEN_SECONDS = 5.0    # an unknown token is not looked up again for this long
UNKNOWN_TOKEN_MAX = 4096       # remembered unknown tokens (oldest forgotten first)
MIN_FORCED_RELOAD = 0.25       # seconds between uncached reloads of the clients table


@dataclass(frozen=True)
class Scopes:
    """What one client may do. Defaults are least privilege: nothing."""

    read: str = READ_NONE        # privacy ceiling of what it may read: none|public|personal|private|secret
    write: bool = False          # capture notes into memory
    ask: bool = False            # ask questions / chat through the routed runtimes
    cloud: bool = False          # ... and let routing send its requests to the cloud zone
    ground: bool = False         # OpenAI endpoint: add retrieved memory to its chats (opt-in)
    rate: float = 20.0           # sustained requests per second
    burst: int = 60              # requests allowed at once before the rate applies

    def __post_init__(self) -> None:
        if self.read not in READ_LEVELS:
            raise UserInputError(
                f"read ceiling must be one of {', '.join(READ_LEVELS)}, not '{self.read}'")
        if self.rate <= 0 or self.burst < 1:
            raise UserInputError("rate must be above 0 and burst at least 1")

    def readable_levels(self) -> list[str]:
        """Privacy tags this client may see, least private first."""
        if self.read == READ_NONE:
            return []
        return list(PRIVACY_LEVELS[: PRIVACY_LEVELS.index(self.read) + 1])

    def may_read(self, privacy: str) -> bool:
        return privacy in self.readable_levels()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scopes":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def describe(self) -> str:
        parts = [f"read<={self.read}" if self.read != READ_NONE else "no read"]
        parts += [name for name in ("write", "ask", "cloud", "ground") if getattr(self, name)]
        parts.append(f"{self.rate:g}/s burst {self.burst}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Client:
    name: str
    status: str  # granted | pending | revoked
    scopes: Scopes = field(default_factory=Scopes)
    created_at: float = 0.0
    updated_at: float = 0.0
    last_seen_at: float | None = None
    has_token: bool = False

    @property
    def granted(self) -> bool:
        return self.status == "granted"

    def effective_scopes(self) -> Scopes:
        """A client that is not granted has no scopes at all, whatever was stored."""
        return self.scopes if self.granted else Scopes(rate=self.scopes.rate, burst=self.scopes.burst)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scopes"] = self.scopes.to_dict()
        return d


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise UserInputError(
            f"'{name}' is not a usable client name: use letters, digits, '.', '_' or '-' "
            "(at most 64), e.g. claude-desktop")
    return name


class ClientRegistry:
    """Grants, tokens and lookups. Every method may be called from any thread."""

    def __init__(self, store: Memory, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``clock`` stamps what is stored (wall time); ``monotonic`` times the cache, the
        forced re-reads and the memory of unknown tokens."""
        self.store = store
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._by_hash: dict[str, Client] = {}
        self._by_name: dict[str, Client] = {}
        self._loaded_at = float("-inf")
        self._seen: dict[str, float] = {}
        # SHA-256 of tokens found in no grant -> when; so a stream of bad tokens cannot make
        # every request re-read the clients table.
        self._unknown: dict[str, float] = {}
        self.reloads = 0  # reads of the clients table (the cost a flood would drive up)

    # -- reads (cached) -----------------------------------------------------------------

    def _refresh(self, force: bool = False) -> None:
        now = self.monotonic()
        if not force and now - self._loaded_at < CACHE_SECONDS:
            return
        rows = self.store.clients.all()
        by_hash, by_name = {}, {}
        for name, status, th, scopes, created, updated, seen in rows:
            try:
                sc = Scopes.from_dict(json.loads(scopes or "{}"))
            except (ValueError, UserInputError) as exc:
                log.warning("client %s has unreadable scopes (%s): treated as none", name, exc)
                sc = Scopes()
            c = Client(name, status, sc, created, updated, seen, has_token=bool(th))
            by_name[name] = c
            if th:
                by_hash[th] = c
        with self._lock:
            self._by_hash, self._by_name, self._loaded_at = by_hash, by_name, now
            self.reloads += 1

    def get(self, name: str) -> Client | None:
        self._refresh()
        return self._by_name.get(name)

    def current(self, name: str, max_age: float) -> Client | None:
        """The client as stored at most ``max_age`` seconds ago (another registry, such as the
        CLI's or the settings window's, may have changed it)."""
        if self.monotonic() - self._loaded_at >= max_age:
            self._refresh(force=True)
        return self._by_name.get(name)

    def list(self) -> list[Client]:
        self._refresh(force=True)
        return sorted(self._by_name.values(), key=lambda c: c.name)

    def authenticate(self, token: str | None, *, look_again: bool = True) -> Client | None:
        """The granted client holding this bearer token, or None (unknown, revoked, malformed).

        A token missing from the cached table is looked up once more, uncached (it may have
        been made a moment ago by another process), unless ``look_again`` is false, the same
        token was unknown a few seconds ago, or the table was re-read a moment ago."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        self._refresh()
        h = hash_token(token)
        client = self._by_hash.get(h)
        if client is None and look_again and not self._known_unknown(h):
            # A table read in the last moment is as good as a fresh one.
            if self.monotonic() - self._loaded_at >= MIN_FORCED_RELOAD:
                self._refresh(force=True)
                client = self._by_hash.get(h)
            if client is None:
                self._note_unknown(h)
        # A dict lookup keyed by the hash is safe from timing probes: learning how much of a
        # SHA-256 digest matched says nothing about the token that would produce it.
        if client is None or not client.granted:
            return None
        return client

    def _known_unknown(self, h: str) -> bool:
        with self._lock:
            at = self._unknown.get(h)
            if at is None:
                return False
            if self.monotonic() - at < UNKNOWN_TOKEN_SECONDS:
                return True
            del self._unknown[h]
            return False

    def _note_unknown(self, h: str) -> None:
        with self._lock:
            if len(self._unknown) >= UNKNOWN_TOKEN_MAX:
                self._unknown.pop(next(iter(self._unknown)))
            self._unknown[h] = self.monotonic()

    # -- writes -------------------------------------------------------------------------

    def grant(self, name: str, scopes: Scopes) -> Client:
        """Grant (or re-grant with new scopes) a client. Keeps its token if it has one."""
        check_name(name)
        now = self.clock()
        payload = json.dumps(scopes.to_dict())
        self.store.clients.grant(name, payload, now)
        self._refresh(force=True)
        return self._by_name[name]

    def rotate_token(self, name: str) -> str:
        """A new bearer token for a granted client; the old one stops working at once.
        Returns the token: it is shown to the person once and never stored in clear."""
        client = self.get(name) or self._reload_get(name)
        if client is None or not client.granted:
            raise UserInputError(
                f"client '{name}' is not granted: run 'deskmind clients grant {name}' first")
        token = new_token()
        self.store.clients.set_token(name, hash_token(token), self.clock())
        self._refresh(force=True)
        return token

    def revoke(self, name: str) -> Client:
        """Withdraw every scope and invalidate the token; the record stays for the audit log."""
        client = self._reload_get(name)
        if client is None:
            raise UserInputError(f"no client named '{name}' (see 'deskmind clients list')")
        self.store.clients.revoke(name, self.clock())
        self._refresh(force=True)
        return self._by_name[name]

    def remove(self, name: str) -> None:
        """Forget a client entirely (its token stops working at once). What it did stays in
        the audit log under its name."""
        if self._reload_get(name) is None:
            raise UserInputError(f"no client named '{name}' (see 'deskmind clients list')")
        self.store.clients.remove(name)
        self._refresh(force=True)

    def reload(self) -> None:
        """Re-read every grant now (another registry on the same memory changed one)."""
        self._refresh(force=True)

    def note_pending(self, name: str) -> None:
        """Remember that an unknown client tried to connect, so the person can grant it."""
        if not NAME_RE.match(name or "") or self._reload_get(name) is not None:
            return
        now = self.clock()
        self.store.clients.add_pending(name, now)
        self._refresh(force=True)

    def touch(self, name: str) -> None:
        """Record that a client was seen (at most once a minute per client, off the hot path)."""
        now = self.clock()
        if now - self._seen.get(name, 0.0) < 60:
            return
        self._seen[name] = now
        self.store.clients.touch(name, now)

    def _reload_get(self, name: str) -> Client | None:
        self._refresh(force=True)
        return self._by_name.get(name)


def with_changes(scopes: Scopes, **changes: Any) -> Scopes:
    """A copy of ``scopes`` with the given fields changed (None values are ignored)."""
    return replace(scopes, **{k: v for k, v in changes.items() if v is not None})
