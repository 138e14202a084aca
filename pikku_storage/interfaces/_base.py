"""Lifecycle shared by every service: clock, idempotent init/close, async context manager, and
the lock-hold fence on every public method."""

from __future__ import annotations

import functools
import inspect
from abc import ABC
from collections.abc import Callable, Coroutine
from datetime import datetime
from types import TracebackType
from typing import Any, Self, cast

from pikku_storage._locks import check_fence, current_hold
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Fence the public coroutine methods the subclass defines (see `_fenced`)."""
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if _fenceable(name, member):
                setattr(cls, name, _fenced(member))

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


# --- the lock-hold fence -------------------------------------------------------------------


_Method = Callable[..., Coroutine[Any, Any, Any]]


def _fenceable(name: str, member: object) -> bool:
    return (
        not name.startswith("_")
        and name != "close"  # releasing what a service owns stays possible in a fenced body
        and inspect.iscoroutinefunction(member)
        and not getattr(member, "__pikku_fenced__", False)
    )


def _fenced(method: _Method) -> _Method:
    """`method`, raising `LockHoldExceeded` before anything else when called in the body of a
    lock held past its `max_hold` (docs/services/workflows.md#locks).

    The one place every service method is fenced. The wrapper is generated with `method`'s own
    parameter list, as `dataclasses` generates `__init__`: forwarding `*args, **kwargs` would
    cost more than the check itself, and outside such a body the check is one context-variable
    read.
    """
    params: list[str] = []
    call: list[str] = []
    positional_only = 0
    for param in inspect.signature(method).parameters.values():
        name, kind = param.name, param.kind
        if name.startswith("_pikku_"):
            raise TypeError(f"parameter name reserved for the fence: {name}")
        if kind is inspect.Parameter.VAR_POSITIONAL:
            params.append(f"*{name}")
            call.append(f"*{name}")
        elif kind is inspect.Parameter.VAR_KEYWORD:
            params.append(f"**{name}")
            call.append(f"**{name}")
        elif kind is inspect.Parameter.KEYWORD_ONLY:
            if not any(p.startswith("*") for p in params):
                params.append("*")
            params.append(name)
            call.append(f"{name}={name}")
        else:
            params.append(name)
            call.append(name)
            if kind is inspect.Parameter.POSITIONAL_ONLY:
                positional_only = len(params)
    if positional_only:
        params.insert(positional_only, "/")
    source = (
        f"async def {method.__name__}({', '.join(params)}):\n"
        "    if _pikku_hold() is not None:\n"
        "        _pikku_check()\n"
        f"    return await _pikku_method({', '.join(call)})\n"
    )
    namespace: dict[str, Any] = {
        "_pikku_hold": current_hold,
        "_pikku_check": check_fence,
        "_pikku_method": method,
    }
    exec(source, namespace)  # generated from the signature only, no user input
    fenced: Any = namespace[method.__name__]
    fenced.__defaults__ = method.__defaults__
    fenced.__kwdefaults__ = method.__kwdefaults__
    functools.update_wrapper(fenced, method)
    fenced.__pikku_fenced__ = True
    return cast(_Method, fenced)


Service.init = _fenced(Service.init)  # type: ignore[method-assign]  # close() stays unfenced

# --- a clear error for a service used before init() (or after close()) -------------------


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
