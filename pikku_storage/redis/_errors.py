"""Classification of redis-py errors by exception class, and their translation.

Errors are recognised by class, never by message text (style §12): a broken or refused
connection, a timeout, a server still loading or a failover in progress is `StorageUnavailable`.
Contract outcomes (not found, conflict) never arrive as Redis errors: the Lua scripts answer
status codes that the services map to errors. See docs/concepts.md#errors,
docs/operations.md#storage-layout.
"""

from __future__ import annotations

import asyncio
import functools
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import redis
from redis import exceptions as rex

from pikku_storage.errors import StorageUnavailable

__all__ = [
    "cancel_count",
    "is_connection_race",
    "is_unavailable",
    "raise_lost_cancellation",
    "translate_errors",
    "translated",
]

P = ParamSpec("P")
R = TypeVar("R")

# ConnectionError covers refused/reset sockets (redis-py wraps OSError in it), BusyLoadingError,
# AuthenticationError and the Sentinel MasterNotFoundError; ReadOnlyError is a primary demoted
# by a failover; TryAgainError a server asking to retry later. Plain OSError is left out on
# purpose: the builtin TimeoutError (and so LockTimeout) is one.
# The cluster replies (MOVED, ASK, CROSSSLOT, CLUSTERDOWN, a slot no node serves) reach a client
# only when it talks to a cluster node; init() refuses that, but a node turned into one later, or
# a failover, must not leak them raw.
_UNAVAILABLE: Final[tuple[type[BaseException], ...]] = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.ReadOnlyError,
    rex.TryAgainError,
    rex.AskError,  # and MovedError, its subclass
    rex.ClusterCrossSlotError,
    rex.ClusterError,  # ClusterDownError, MasterDownError
    rex.RedisClusterException,  # SlotNotCoveredError
)


_REDIS_PY: Final = Path(redis.__file__).parent


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the server could not be reached or the connection broke."""
    return isinstance(exc, _UNAVAILABLE)


def is_connection_race(exc: BaseException) -> bool:
    """An `AttributeError`/`TypeError` raised inside redis-py itself: on a failover its cluster
    client closes every pooled connection, also ones another task is still sending on, which
    then fails with `'NoneType' object has no attribute 'writelines'`. For the caller that is
    a connection lost mid-command (the write may or may not have happened), so it is
    translated like one; the same errors raised by our own code are bugs and stay raw."""
    if not isinstance(exc, AttributeError | TypeError) or exc.__traceback__ is None:
        return False
    innermost = traceback.extract_tb(exc.__traceback__)[-1].filename
    return Path(innermost).is_relative_to(_REDIS_PY)


def _unavailable(exc: BaseException) -> StorageUnavailable:
    # redis-py's own text names the host and port and the reason (refused, timed out, ...)
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if is_connection_race(exc):
        detail = f"connection closed under a running command ({detail})"
    return StorageUnavailable(f"Redis unavailable: {detail}")


def cancel_count() -> int:
    """How many cancellations of the current task are pending (`Task.cancelling()`)."""
    task = asyncio.current_task()
    return 0 if task is None else task.cancelling()


def raise_lost_cancellation(before: int) -> None:
    """Re-raise a cancellation of the current task that a driver call swallowed.

    On Python 3.11, `asyncio.wait_for` returns the inner result when the cancellation and the
    result arrive together (CPython gh-86296), and redis-py sends every command through it
    when `socket_timeout` is set: the task goes on as if never cancelled, so a loop (a lease
    renewal, a heartbeat task) that is cancelled and awaited would run forever. A call that
    returned normally while the task's `cancelling()` count rose above `before` (read when
    the call started) lost one; raising `CancelledError` restores it. A cancellation already
    pending before the call (cleanup running in an `except CancelledError` block) is left to
    its handler.
    """
    if cancel_count() > before:
        raise asyncio.CancelledError


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    """Turn connection-level redis-py errors raised in the block into `StorageUnavailable`."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise _unavailable(exc) from exc
    except (AttributeError, TypeError) as exc:
        if is_connection_race(exc):
            raise _unavailable(exc) from exc
        raise


def translated(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Run a coroutine function inside `translate_errors()`, then `raise_lost_cancellation()`
    (used on every backend hook)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # translate_errors() and raise_lost_cancellation() written inline: this runs on every
        # hook, and an async context manager costs more than the rest of the wrapper
        task = asyncio.current_task()
        before = 0 if task is None else task.cancelling()
        try:
            result = await fn(*args, **kwargs)
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc
        except (AttributeError, TypeError) as exc:
            if is_connection_race(exc):
                raise _unavailable(exc) from exc
            raise
        if task is not None and task.cancelling() > before:
            raise asyncio.CancelledError
        return result

    return wrapper
