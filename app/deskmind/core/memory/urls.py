"""Where the memory lives: a SQLite file or a PostgreSQL URL, parsed, checked and shown safely.

A URL is kept in a settings file or an environment variable, so it must never hold a password:
one written there is refused, and the password is read from the OS keyring instead under
``db:<user>@<host>:<port>/<dbname>``. :func:`redact_url` is the one way a URL is shown (in
errors, logs, ``deskmind doctor`` and ``deskmind store show``).
"""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from deskmind.core.errors import UserInputError

POSTGRES_SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = 5432
MAX_URL_CHARS = 2048
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# Query parameters libpq accepts that carry a secret.
_SECRET_PARAMS = ("password", "sslpassword")
MASK = "***"


class StorageUrlError(UserInputError):
    """A storage location that cannot be used as written."""


@dataclass(frozen=True)
class StorageLocation:
    backend: str            # "sqlite" or "postgres"
    url: str                # as given (never with a password: those are refused)
    path: Path | None = None  # SQLite only

    @property
    def keyring_key(self) -> str:
        """The keyring entry holding this database's password (PostgreSQL only)."""
        return keyring_key(self.url)


def redact_url(url: str) -> str:
    """``url`` with any password (in the authority or in the query) replaced by ``***``.
    Anything that does not parse is cut to its scheme, so nothing secret leaks through."""
    text = str(url)
    m = _SCHEME.match(text)
    if m is None:
        return text  # a file path holds no password
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            auth, host = netloc.rsplit("@", 1)
            if ":" in auth:
                auth = auth.split(":", 1)[0] + ":" + MASK
            netloc = f"{auth}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs],
                              safe="/*")
        if (netloc, query) == (parts.netloc, parts.query):
            return text
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return f"{m.group(1)}://{MASK}"


def parse_location(value: str | Path) -> StorageLocation:
    """A SQLite path (``/x/memory.db``, ``~/memory.db``, ``sqlite:///x/memory.db``) or a
    PostgreSQL URL (``postgresql://user@host:5432/dbname?sslmode=require``)."""
    if isinstance(value, Path):
        return StorageLocation("sqlite", str(value), value.expanduser())
    text = str(value).strip()
    if not text:
        raise StorageUrlError("the memory location is empty: give a file path or a "
                              "postgresql:// URL")
    if len(text) > MAX_URL_CHARS:
        raise StorageUrlError(f"the memory location is longer than {MAX_URL_CHARS} characters")
    m = _SCHEME.match(text)
    if m is None:
        if text.startswith("sqlite:"):
            text = "sqlite://" + text[len("sqlite:"):]
            m = _SCHEME.match(text)
        else:
            return StorageLocation("sqlite", text, Path(text).expanduser())
    scheme = m.group(1).lower()
    if scheme == "sqlite":
        rest = text[m.end():]
        if not rest or rest == ":memory:":
            raise StorageUrlError(f"'{text}' names no file: write sqlite:///path/to/memory.db")
        return StorageLocation("sqlite", text, Path(unquote(rest)).expanduser())
    if scheme in POSTGRES_SCHEMES:
        check_no_password(text)
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise StorageUrlError(f"'{redact_url(text)}' is not a valid PostgreSQL URL: {exc}") from None
        return StorageLocation("postgres", text)
    raise StorageUrlError(
        f"'{redact_url(text)}': Deskmind keeps its memory in a SQLite file (a path or "
        f"sqlite:///path) or in PostgreSQL (postgresql://user@host/dbname), not '{scheme}'")


def check_no_password(url: str) -> None:
    parts = urlsplit(url)
    in_query = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)
                if k.lower() in _SECRET_PARAMS]
    if parts.password is not None or in_query:
        raise StorageUrlError(
            f"the database URL '{redact_url(url)}' holds a password. A URL is kept in a settings "
            "file or an environment variable, where a password does not belong: remove it from "
            "the URL and store it in the OS keyring with 'deskmind store password URL'")


def keyring_key(url: str) -> str:
    """``db:<user>@<host>:<port>/<dbname>``, with libpq's defaults filled in (the OS user, a
    local server, port 5432, a database named after the user)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    user = unquote(parts.username or query.get("user") or getpass.getuser())
    host = unquote(parts.hostname or query.get("host") or "localhost")
    try:
        port = parts.port or int(query.get("port") or DEFAULT_PORT)
    except ValueError:
        raise StorageUrlError(f"'{redact_url(url)}' has a port that is not a number") from None
    dbname = unquote(parts.path.lstrip("/") or query.get("dbname") or user)
    return f"db:{user}@{host}:{port}/{dbname}"
