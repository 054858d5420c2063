"""The loaded models of this process: one engine per model file, shared by every hub.

Ask, note clean-up, meeting minutes and the gateway each build their own
:class:`~deskmind.core.runtimes.hub.RuntimeHub`, often one per call. Loading a GGUF takes a
second or more and holds its weights in memory, so the engines live here instead, in the
:class:`EnginePool` the :class:`~deskmind.core.app.Core` owns, keyed by the model file.

An engine unused for ``keep_alive`` seconds is unloaded (as Ollama's ``keep_alive``: 0 unloads
as soon as the last user is done, -1 never unloads) and loaded again on the next use. The
setting is ``[engine] keep_alive`` in settings.toml (:class:`~deskmind.core.config.sections.EngineSettings`).
Unloading while a generation runs is safe: the engine cancels it and waits for it to leave
llama.cpp before the model is freed.

Every method may be called from any thread; :meth:`EnginePool.acquire` blocks while a model
loads, so call it from a worker thread, never from an event loop or the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

# The [engine] table is declared with the rest of the settings schema.
from deskmind.core.config.sections import (DEFAULT_KEEP_ALIVE_S, EngineSettings,  # noqa: F401
                                           parse_keep_alive)
from deskmind.core.errors import UserInputError

log = logging.getLogger(__name__)

class Engine(Protocol):
    """A loaded model. ``close`` cancels what it is generating, waits for that to stop, then
    frees the model; it may be called more than once."""

    def close(self) -> None: ...


def engine_settings(settings: Any) -> EngineSettings:
    """The checked ``[engine]`` table of loaded settings (defaults when absent)."""
    declared = getattr(settings, "engine", None)
    return declared if isinstance(declared, EngineSettings) else EngineSettings()


class _Slot:
    """One model file's place in the pool. ``lock`` is held while it loads or unloads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.engine: Engine | None = None
        self.users = 0
        self.timer: threading.Timer | None = None
        self.token = 0  # bumped on every use: a timer armed before it is stale
        self.retired = False  # replaced: unloaded as soon as no one uses it


class EnginePool:
    def __init__(self, loader: Callable[[Path], Engine], *,
                 keep_alive: float = DEFAULT_KEEP_ALIVE_S) -> None:
        self._loader = loader
        self.keep_alive = keep_alive
        self._lock = threading.Lock()  # guards _slots and every slot's users/timer/token
        self._slots: dict[Path, _Slot] = {}
        self._closed = False
        self.loads: Counter[Path] = Counter()  # how many times each model file was loaded

    @staticmethod
    def key(path: Path | str) -> Path:
        return Path(path).expanduser().resolve()

    def acquire(self, path: Path | str) -> Engine:
        """The engine for ``path``, loaded now if it is not; pair with :meth:`release`.
        Blocking (a load takes seconds): call it from a worker thread."""
        key = self.key(path)
        with self._lock:
            if self._closed:
                raise UserInputError("the model engines were shut down")
            slot = self._slots.setdefault(key, _Slot())
            slot.users += 1
            slot.token += 1
            slot.retired = False
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None
        try:
            with slot.lock:
                if slot.engine is None:
                    started = time.perf_counter()
                    slot.engine = self._loader(key)
                    self.loads[key] += 1
                    log.info("loaded %s in %.2f s", key.name, time.perf_counter() - started)
                return slot.engine
        except BaseException:
            self._done_with(key, slot)
            raise

    def release(self, path: Path | str) -> None:
        key = self.key(path)
        with self._lock:
            slot = self._slots.get(key)
        if slot is not None:
            self._done_with(key, slot)

    @contextmanager
    def using(self, path: Path | str) -> Iterator[Engine]:
        engine = self.acquire(path)
        try:
            yield engine
        finally:
            self.release(path)

    def _done_with(self, key: Path, slot: _Slot) -> None:
        with self._lock:
            slot.users -= 1
            if slot.users > 0 or self._closed or (self.keep_alive < 0 and not slot.retired):
                return
            token = slot.token
            if self.keep_alive > 0 and not slot.retired:
                slot.timer = threading.Timer(self.keep_alive, self._expire, (key, slot, token))
                slot.timer.name = f"engine-idle-{key.stem[:20]}"
                slot.timer.daemon = True
                slot.timer.start()
                return
        self._expire(key, slot, token)

    def _expire(self, key: Path, slot: _Slot, token: int) -> None:
        with slot.lock:
            with self._lock:
                if slot.users or slot.token != token or slot.engine is None:
                    return  # used again since: it stays loaded
                engine, slot.engine, slot.timer = slot.engine, None, None
            if not slot.retired:
                log.info("unloading %s after %.0f s unused", key.name, self.keep_alive)
            engine.close()

    def unload(self, path: Path | str) -> bool:
        """Free the model now, cancelling and waiting for what it generates (a swap, or the
        file was removed). The next use loads it again. False when it was not loaded."""
        key = self.key(path)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                return False
            slot.token += 1
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None
        with slot.lock:
            engine, slot.engine = slot.engine, None
            if engine is not None:
                engine.close()
        return engine is not None

    def retire(self, path: Path | str) -> bool:
        """A model that was replaced (another file chosen for its class): free it now if no one
        is using it, else as soon as the last user is done, instead of after ``keep_alive``.
        True when it was loaded."""
        key = self.key(path)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None or slot.engine is None:
                return False
            slot.retired = True
            if slot.users:
                return True
            slot.token += 1
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None
            token = slot.token
        log.info("unloading %s: another model replaced it", key.name)
        self._expire(key, slot, token)
        return True

    def preload(self, path: Path | str) -> None:
        """Load ``path`` now so that its first use finds it loaded; it then stays for
        ``keep_alive`` as after any use. Blocking: call it from a worker thread."""
        self.acquire(path)
        self.release(path)

    def loaded(self) -> list[Path]:
        with self._lock:
            return [k for k, s in self._slots.items() if s.engine is not None]

    def close(self) -> None:
        """Unload every model (cancelling generations in flight); later acquires fail."""
        with self._lock:
            self._closed = True
            keys = list(self._slots)
        for key in keys:
            self.unload(key)
