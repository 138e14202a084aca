"""Lock names, the process-local lock registry (memory, SQLite, and PostgreSQL's first stage),
and the single-use lock handle with its hold limit (`max_hold`) and fence.

Waits and hold deadlines run on real time, never on the service clock (D13).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from pikku_storage.errors import LockHoldExceeded, LockTimeout

__all__ = ["LocalLockRegistry", "LockName", "SingleUseLock", "check_fence", "current_hold"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LockName:
    """A run lock (`step_name is None`) or a step lock; `key` is unambiguous by D3."""

    run_id: str
    step_name: str | None = None

    @property
    def key(self) -> str:
        if self.step_name is None:
            return f"run\x00{self.run_id}"
        return f"step\x00{self.run_id}\x00{self.step_name}"

    def digest(self, namespace: str) -> bytes:
        """SHA-256 over namespace, U+0000 and the key: the stable cross-process lock id."""
        return hashlib.sha256(f"{namespace}\x00{self.key}".encode()).digest()

    def __str__(self) -> str:
        if self.step_name is None:
            return f"run={self.run_id}"
        return f"run={self.run_id}, step={self.step_name}"


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class LocalLockRegistry:
    """Named asyncio locks created on demand and dropped when nobody holds or waits for them."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    @asynccontextmanager
    async def hold(self, key: str, label: str, timeout: float | None) -> AsyncIterator[None]:
        """Hold lock `key` for the body; `LockTimeout` naming `label` if not acquired in time."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            await _acquire(entry.lock, label, timeout)
            try:
                yield
            finally:
                entry.lock.release()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]


async def _acquire(lock: asyncio.Lock, label: str, timeout: float | None) -> None:
    if timeout is None:
        await lock.acquire()
        return
    if timeout == 0:
        if lock.locked():
            raise LockTimeout(label, timeout)
        await lock.acquire()
        return
    try:
        async with asyncio.timeout(timeout):
            await lock.acquire()
    except TimeoutError:
        raise LockTimeout(label, timeout) from None


class _Hold:
    """One lock hold with a `max_hold`, as the body's context sees it (`_HOLD`).

    Mutable and shared: tasks created in the body copy the context, so they see `expired`
    flip at the deadline. `parent` is the hold that was current at entry (nested locks).
    """

    __slots__ = ("expired", "label", "max_hold", "parent")

    def __init__(self, label: str, max_hold: float, parent: _Hold | None) -> None:
        self.label = label
        self.max_hold = max_hold
        self.parent = parent
        self.expired = False


_HOLD: Final[contextvars.ContextVar[_Hold | None]] = contextvars.ContextVar(
    "pikku_storage_lock_hold", default=None
)

current_hold: Final = _HOLD.get
"""The innermost lock hold with a `max_hold` of the current context, or `None` (the fast test
before `check_fence`)."""

# Releases started at a deadline, kept alive until done (the loop holds tasks weakly).
_RELEASES: Final[set[asyncio.Task[None]]] = set()


def check_fence() -> None:
    """Raise `LockHoldExceeded` if the current context is the body of an expired lock hold.

    Every public service method and every lock entry calls this before any I/O; outside a
    body with a `max_hold` it is one context-variable read (docs/services/workflows.md#locks).
    """
    hold = _HOLD.get()
    while hold is not None:
        if hold.expired:
            raise LockHoldExceeded(hold.label, hold.max_hold)
        hold = hold.parent


def _log_failed_release(task: asyncio.Task[None]) -> None:
    _RELEASES.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning(
            "releasing a lock at its max_hold deadline failed", exc_info=task.exception()
        )


class SingleUseLock(AbstractAsyncContextManager[None]):
    """Wraps a backend's lock context: single use, releasable early by `close()`, and with a
    hold limit (docs/services/workflows.md#locks).

    With `max_hold`, acquisition arms a deadline on the loop's clock. At the deadline the hold
    is marked expired, the backend's exit runs at once in a task of its own (it must not wait
    for the body), and the entering task is cancelled as `asyncio.timeout` does; the body's
    context is fenced (`check_fence`) and leaving raises `LockHoldExceeded` chained from what
    the body raised. Spec: 05 §3.4.
    """

    __slots__ = (
        "_cancelled",
        "_cancelling",
        "_context",
        "_held",
        "_hold",
        "_label",
        "_max_hold",
        "_on_done",
        "_releasing",
        "_task",
        "_timer",
        "_token",
        "_used",
    )

    def __init__(
        self,
        context: AbstractAsyncContextManager[None],
        on_enter: set[SingleUseLock],
        label: str = "",
        max_hold: float | None = None,
    ) -> None:
        self._context = context
        self._on_done = on_enter
        self._label = label
        self._max_hold = max_hold
        self._used = False
        self._held = False
        self._releasing: asyncio.Task[None] | None = None
        self._hold: _Hold | None = None
        self._token: contextvars.Token[_Hold | None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._cancelled = False

    async def __aenter__(self) -> None:
        if self._used:
            raise RuntimeError("a lock context manager can be entered only once")
        self._used = True
        check_fence()
        await self._context.__aenter__()
        self._held = True
        self._on_done.add(self)
        if self._max_hold is not None:
            self._arm(self._max_hold)

    def _arm(self, max_hold: float) -> None:
        """Start the deadline and make this hold current in the body's context."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        outer = contextvars.copy_context()  # the expiry and its release run unfenced
        self._hold = _Hold(self._label, max_hold, _HOLD.get())
        self._token = _HOLD.set(self._hold)
        if task is not None:
            self._task = task
            self._cancelling = task.cancelling()
        self._timer = loop.call_at(loop.time() + max_hold, self._expire, context=outer)

    def _expire(self) -> None:
        """At the deadline: mark expired, start the release, cancel the entering task."""
        self._timer = None
        assert self._hold is not None
        self._hold.expired = True
        logger.warning("lock %s held longer than %ss: taken back", self._label, self._max_hold)
        if self._held:
            self._held = False
            release = asyncio.get_running_loop().create_task(
                self._release_at_deadline(), name="pikku-lock-expiry-release"
            )
            _RELEASES.add(release)
            release.add_done_callback(_log_failed_release)
            self._releasing = release
        if self._task is not None and not self._task.done():
            self._task.cancel()
            self._cancelled = True

    async def _release_at_deadline(self) -> None:
        try:
            await self._context.__aexit__(None, None, None)
        finally:
            self._on_done.discard(self)

    def _disarm(self) -> None:
        """The body left: stop the deadline and restore the enclosing hold."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._token is not None:
            # ValueError: left in another context than entered, which has nothing to restore
            with contextlib.suppress(ValueError):
                _HOLD.reset(self._token)
            self._token = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        hold = self._hold
        if hold is None:
            await self.release(exc_type, exc, tb)
            return None
        self._disarm()
        if not hold.expired:
            await self.release(exc_type, exc, tb)
            return None
        outside = False
        if self._cancelled:
            self._cancelled = False
            assert self._task is not None
            outside = self._task.uncancel() > self._cancelling
        if self._releasing is not None and not self._releasing.done():
            await asyncio.wait({self._releasing})  # a contender may already hold it
        if outside and isinstance(exc, asyncio.CancelledError):
            return None  # a cancellation from outside surfaces as itself
        raise LockHoldExceeded(self._label, hold.max_hold) from exc

    async def release(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """Release once; later calls (the body's exit after `close()`) do nothing, except wait
        for a release started at the deadline."""
        if not self._held:
            if self._releasing is not None and not self._releasing.done():
                await asyncio.wait({self._releasing})
            return
        self._held = False
        self._on_done.discard(self)
        await self._context.__aexit__(exc_type, exc, tb)
