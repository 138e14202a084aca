"""Lock names and the process-local lock registry (memory, SQLite, and PostgreSQL's first stage).

Waits run on real time, never on the service clock (D13).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

from pikku_storage.errors import LockTimeout

__all__ = ["LocalLockRegistry", "LockName", "SingleUseLock"]

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


class SingleUseLock(AbstractAsyncContextManager[None]):
    """Wraps a backend's lock context: single use, and releasable early by `close()`
    (docs/services/workflows.md#locks)."""

    __slots__ = ("_context", "_held", "_on_done", "_used")

    def __init__(
        self,
        context: AbstractAsyncContextManager[None],
        on_enter: set[SingleUseLock],
    ) -> None:
        self._context = context
        self._on_done = on_enter
        self._used = False
        self._held = False

    async def __aenter__(self) -> None:
        if self._used:
            raise RuntimeError("a lock context manager can be entered only once")
        self._used = True
        await self._context.__aenter__()
        self._held = True
        self._on_done.add(self)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release(exc_type, exc, tb)

    async def release(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """Release once; later calls (the body's exit after `close()`) do nothing."""
        if not self._held:
            return
        self._held = False
        self._on_done.discard(self)
        await self._context.__aexit__(exc_type, exc, tb)
