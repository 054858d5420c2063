"""API keys: kept in the OS keyring only, never in config, logs, the database or errors.

The keyring module is injected so tests can pin a backend. Every key read or written is also
registered with :func:`redact`, and :class:`RedactionFilter` scrubs known keys and key-shaped
strings from log records, so a key that slips into a message never reaches a log file.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from deskmind.core.errors import DeskmindError, UserInputError

log = logging.getLogger(__name__)

SERVICE = "deskmind"
MASK = "[redacted]"

# Shapes of keys and auth headers worth scrubbing even when the exact value is unknown.
_PATTERNS = [
    re.compile(r"sk-(?:ant-)?[A-Za-z0-9_\-]{12,}"),
    re.compile(r"dmk_[A-Za-z0-9_\-]{20,}"),  # the gateway's own client tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)((?:x-api-key|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
]
_known: set[str] = set()
_known_lock = threading.Lock()


class NoKeyringError(DeskmindError):
    exit_code = 6


def remember_secret(value: str) -> None:
    """Make ``value`` something :func:`redact` always removes."""
    if value and len(value) >= 6:
        with _known_lock:
            _known.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    for pat in _PATTERNS:
        text = pat.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


class RedactionFilter(logging.Filter):
    """Rewrites each record's message with keys removed. Attach it to handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        clean = redact(msg)
        if clean != msg or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks carry exception messages: render now, scrubbed.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_redaction(logger: logging.Logger | None = None) -> RedactionFilter:
    """Attach one filter to every handler of ``logger``; by default to the root logger's and
    those of every logger with handlers of its own (uvicorn's do not propagate to the root).
    Call it again after a library configures its own handlers."""
    flt = RedactionFilter()
    if logger is not None:
        loggers = [logger]
    else:
        loggers = [logging.getLogger()] + [
            lg for lg in list(logging.Logger.manager.loggerDict.values())
            if isinstance(lg, logging.Logger) and lg.handlers]
    for lg in loggers:
        for h in lg.handlers:
            if not any(isinstance(f, RedactionFilter) for f in h.filters):
                h.addFilter(flt)
    return flt


LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.WARNING, *, stream: Any = None,
                      replace: bool = False) -> None:
    """The process's logging: one stream handler on the root logger (stderr by default), every
    line scrubbed of keys. ``replace`` drops the handlers already there (``deskmind mcp``,
    whose stdout belongs to the protocol). The command line, the tray app and its helper
    processes all set logging up through here."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=stream, force=replace)
    install_redaction()


NO_BACKEND_HELP = (
    "no OS keyring is available here, so API keys cannot be stored safely. Choose one: "
    "(1) start a Secret Service (e.g. gnome-keyring-daemon --unlock --components=secrets in a "
    "D-Bus session) or KWallet; (2) explicitly accept a file-based keyring by installing "
    "keyrings.alt and setting PYTHON_KEYRING_BACKEND=keyrings.alt.file.EncryptedKeyring; or "
    "(3) pass the key for one run only in the environment variable DESKMIND_{env}_API_KEY"
)

NO_BACKEND_DB_HELP = (
    "no OS keyring is available here, so a database password cannot be stored safely: start a "
    "Secret Service (e.g. gnome-keyring-daemon --unlock --components=secrets in a D-Bus "
    "session) or KWallet, or explicitly accept a file-based keyring by installing keyrings.alt "
    "and setting PYTHON_KEYRING_BACKEND=keyrings.alt.file.EncryptedKeyring"
)


class SecretStore:
    """Keys by provider name, in the keyring under service ``deskmind``. Blocking: call it from
    a worker thread in the GUI (some backends prompt or talk D-Bus)."""

    def __init__(self, keyring_module: Any = None, environ: dict[str, str] | None = None) -> None:
        if keyring_module is None:
            import keyring as keyring_module
        self.keyring = keyring_module
        import os

        self.environ = os.environ if environ is None else environ

    def _backend_ok(self) -> bool:
        try:
            from keyring.backends import fail, null
        except ImportError:
            return True
        backend = self.keyring.get_keyring()
        return not isinstance(backend, (fail.Keyring, null.Keyring))

    def _no_backend(self, provider: str) -> NoKeyringError:
        return NoKeyringError(NO_BACKEND_HELP.format(env=_env_name(provider)))

    def get(self, provider: str) -> str | None:
        env = self.environ.get(f"DESKMIND_{_env_name(provider)}_API_KEY")
        if env:
            remember_secret(env)
            return env
        if not self._backend_ok():
            return None
        name = _check_name(provider)
        try:
            value = self.keyring.get_password(SERVICE, name)
        except Exception as exc:  # keyring errors vary by backend; the message has no key in it
            raise DeskmindError(f"the keyring could not be read ({type(exc).__name__}): "
                                "unlock it and try again") from None
        if value:
            remember_secret(value)
        return value

    def set(self, provider: str, value: str) -> None:
        value = value.strip()
        if not value:
            raise UserInputError("an empty key was given: nothing stored")
        remember_secret(value)
        name = _check_name(provider)
        if not self._backend_ok():
            raise self._no_backend(provider)
        try:
            self.keyring.set_password(SERVICE, name, value)
        except Exception as exc:
            raise DeskmindError(f"the keyring refused the key ({type(exc).__name__}): "
                                "unlock it and try again") from None

    def delete(self, provider: str) -> bool:
        name = _check_name(provider)
        if not self._backend_ok():
            raise self._no_backend(provider)
        try:
            self.keyring.delete_password(SERVICE, name)
            return True
        except Exception:  # PasswordDeleteError: nothing stored under that name
            return False

    # -- database passwords (PostgreSQL), under "db:<user>@<host>:<port>/<dbname>" ----------

    def database_password(self, key: str) -> str | None:
        """The password stored for a database, or None (none stored, or no keyring)."""
        name = _check_db_key(key)
        if not self._backend_ok():
            return None
        try:
            value = self.keyring.get_password(SERVICE, name)
        except Exception as exc:
            raise DeskmindError(f"the keyring could not be read ({type(exc).__name__}): "
                                "unlock it and try again") from None
        if value:
            remember_secret(value)
        return value or None

    def set_database_password(self, key: str, value: str) -> None:
        name = _check_db_key(key)
        value = value.rstrip("\r\n")
        if not value:
            raise UserInputError("an empty password was given: nothing stored")
        remember_secret(value)
        if not self._backend_ok():
            raise NoKeyringError(NO_BACKEND_DB_HELP)
        try:
            self.keyring.set_password(SERVICE, name, value)
        except Exception as exc:
            raise DeskmindError(f"the keyring refused the password ({type(exc).__name__}): "
                                "unlock it and try again") from None

    def where(self, provider: str) -> str | None:
        """Where a key for ``provider`` comes from ("environment NAME" or "keyring"), or None
        when there is none. Never returns the key."""
        env = f"DESKMIND_{_env_name(_check_name(provider))}_API_KEY"
        if self.environ.get(env):
            return f"environment {env}"
        if not self._backend_ok():
            return None
        return "keyring" if self.get(provider) else None

    def describe_backend(self) -> str:
        if not self._backend_ok():
            return "none"
        b = self.keyring.get_keyring()
        return f"{type(b).__module__}.{type(b).__name__}"


def _check_name(provider: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", provider or ""):
        raise UserInputError(f"'{provider}' is not a provider name (letters, digits, . _ -)")
    return provider


def _check_db_key(key: str) -> str:
    # The host may be a Unix socket folder (``db:ana@/run/postgresql:5432/deskmind``).
    if not re.fullmatch(r"db:[^\s@]{1,128}@\S{1,300}:\d{1,5}/[^\s/]{1,128}", key or ""):
        raise UserInputError(f"'{key}' is not a database key (db:<user>@<host>:<port>/<dbname>)")
    return key


def _env_name(provider: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", provider).upper()
