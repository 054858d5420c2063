"""The kinds of model runtime Deskmind speaks to, registered once.

A kind says how a provider of that kind is reached and spoken to: the runtime class for a
server at a URL (or an in-process engine), how an API key is sent, and how a server of that
kind is recognised on a loopback port. Routing's config validation, the hub, discovery, the
runtimes settings page and the CLI all read the kinds from here; adding one touches one module
that registers it (the built-ins are registered by :mod:`deskmind.core.runtimes` on import).

This module imports no runtime: factories are called only when a provider is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable, Iterator

from deskmind.core.errors import UserInputError

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from deskmind.core.runtimes.base import Runtime
    from deskmind.core.runtimes.http import Transport

# (client, base url, timeout) -> (models, loaded models, context windows) or None
Probe = Callable[["httpx.AsyncClient", str, float],
                 Awaitable["tuple[list[str], list[str], dict[str, int]] | None"]]


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@dataclass(frozen=True)
class RuntimeKind:
    name: str                      # as written in routing.toml: kind = "ollama"
    label: str                     # for people: "Ollama"
    # A server at a URL: build(provider name, transport). None for an in-process engine.
    build: "Callable[[str, Transport], Runtime] | None" = None
    # How an API key travels to a server of this kind.
    key_headers: Callable[[str], dict[str, str]] = bearer
    # Recognises a server of this kind on loopback and lists its models; None: never probed.
    probe: Probe | None = None

    @property
    def in_process(self) -> bool:
        """Runs inside Deskmind from a model file (no URL, always the machine zone)."""
        return self.build is None


class RuntimeKinds:
    """Kinds by name, in registration order. Any thread may read; register at start-up."""

    def __init__(self) -> None:
        self._kinds: dict[str, RuntimeKind] = {}

    def register(self, kind: RuntimeKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"runtime kind '{kind.name}' is registered already")
        self._kinds[kind.name] = kind

    def unregister(self, name: str) -> None:
        self._kinds.pop(name, None)

    def names(self) -> list[str]:
        return list(self._kinds)

    def served(self) -> list[str]:
        """Kinds reached at a URL (the ones a person adds with an address)."""
        return [k.name for k in self._kinds.values() if not k.in_process]

    def probed(self) -> list[str]:
        """Kinds whose servers can be found on a loopback port."""
        return [k.name for k in self._kinds.values() if k.probe is not None]

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[RuntimeKind]:
        return iter(list(self._kinds.values()))

    def get(self, name: str) -> RuntimeKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UserInputError(f"unknown runtime kind '{name}' (known: "
                                 f"{', '.join(self._kinds) or 'none'})") from None


# The application's kinds: the built-ins are registered when deskmind.core.runtimes loads.
RUNTIME_KINDS = RuntimeKinds()
