"""Lifecycle shared by every service: clock, idempotent init/close, async context manager."""

from __future__ import annotations

import functools
import inspect
from abc import ABC
from collections.abc import Callable, Coroutine
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from pikku_storage.clock import Clock, SystemClock, now_ms
from pikku_storage.errors import StorageUnavailable

__all__ = ["Service"]


class Service(ABC):  # noqa: B024  # abstract hooks live in the subclasses
    """Base of the eight service classes.

    Constructors store configuration only; `init()` creates or migrates what the backend needs
    and `close()` releases what it owns. Both are idempotent (see
    docs/concepts.md#lifecycle-and-namespaces). Backends implement
    `_init` and `_close`.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        _guard_until_init(self)

    @property
    def clock(self) -> Clock:
        """The clock that stamps every write of this service."""
        return self._clock

    def _now(self) -> datetime:
        """The one instant a call stamps, aware UTC in whole milliseconds
        (docs/services/workflows.md)."""
        return now_ms(self._clock)

    async def init(self) -> None:
        """Create or migrate the backend's structures; idempotent and safe concurrently."""
        await self._init()
        for name in _public_coroutines(type(self)):
            self.__dict__.pop(name, None)  # initialized: calls go straight to the methods

    async def close(self) -> None:
        """Release what this service owns (a borrowed pool, client or engine stays open)."""
        await self._close()
        _guard_until_init(self)

    async def _init(self) -> None:  # noqa: B027
        """Backend hook of `init()`; nothing to do by default."""

    async def _close(self) -> None:  # noqa: B027
        """Backend hook of `close()`; nothing to do by default."""

    async def __aenter__(self) -> Self:
        await self.init()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# --- a clear error for a service used before init() (or after close()) -------------------


_Method = Callable[..., Coroutine[Any, Any, Any]]


@functools.cache
def _public_coroutines(cls: type[Service]) -> dict[str, _Method]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in ("init", "close")
    }


def _is_driver_error(exc: Exception) -> bool:
    """A database driver's own exception, or unavailability (what a missing `init()` gives)."""
    module = type(exc).__module__.partition(".")[0]
    return isinstance(exc, StorageUnavailable) or module not in ("builtins", "pikku_storage")


def _guard_until_init(service: Service) -> None:
    """Until `init()`, a call failing with a driver error ("no such table", "pool is not open
    yet") says to call `init()` instead; `init()` removes the guard, so it costs nothing after."""
    for name, method in _public_coroutines(type(service)).items():
        service.__dict__[name] = functools.partial(_guarded, service, method)


async def _guarded(service: Service, method: _Method, *args: Any, **kwargs: Any) -> Any:
    try:
        return await method(service, *args, **kwargs)
    except Exception as exc:
        if not _is_driver_error(exc):
            raise
        raise StorageUnavailable(
            f"{type(service).__name__} is not initialized (or was closed): call "
            f"`await storage.init()` or use `async with open_storage(...)` before using it "
            f"({type(exc).__name__}: {str(exc).partition(chr(10))[0]})",
            outcome_unknown=False,  # nothing reached a store that is not set up
        ) from exc
