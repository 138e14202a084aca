"""Run and step locks: a process-local stage, then the server's session lock where there is one.

1. A process-local asyncio lock per name (`LocalLockRegistry`), so tasks of one process queue
   without holding connections. On SQLite this is the whole lock: a registry per database
   file (per engine for `:memory:`), so locks stop at the process.
2. PostgreSQL (`pg_try_advisory_lock`) and MySQL (`GET_LOCK(name, 0)`): a dedicated pooled
   connection polls the session lock with jittered backoff until the deadline, so a cancelled
   waiter never leaves a server-side wait behind. If this process already holds the same
   server key for another name (a hash collision), it counts one more holder and takes nothing.
3. Release: the server unlock on that connection when the key's last holder leaves. If acquire
   or release fails or is cancelled midway the connection is invalidated: the session's end
   frees its locks. A lock lost while held is logged at release, never raised.

Waits use `time.monotonic()`, never the service clock (D13). See docs/services/workflows.md#locks,
docs/operations.md#storage-layout.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Final

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection

from pikku_storage._locks import LocalLockRegistry, LockName
from pikku_storage.errors import LockTimeout
from pikku_storage.sqlalchemy._connection import Database
from pikku_storage.sqlalchemy._dialects import DialectOps
from pikku_storage.sqlalchemy._errors import translate_errors

__all__ = ["hold_lock"]

logger = logging.getLogger(__name__)

FIRST_BACKOFF: Final = 0.005
MAX_BACKOFF: Final = 0.1

_SERVER_REGISTRY: Final = LocalLockRegistry()
_FILE_REGISTRIES: dict[str, LocalLockRegistry] = {}
_ENGINE_REGISTRIES: weakref.WeakKeyDictionary[Engine, LocalLockRegistry] = (
    weakref.WeakKeyDictionary()
)


@dataclass(slots=True)
class _Held:
    """A server lock this process holds: its connection and how many names share it."""

    conn: AsyncConnection
    ops: DialectOps
    holders: int = 1


_HELD: dict[tuple[str, object], _Held] = {}


def _registry(db: Database) -> tuple[LocalLockRegistry, str]:
    """The process-local registry covering `db`'s locks, and the prefix of its keys."""
    space = db.lock_space()
    if isinstance(space, Engine):
        registry = _ENGINE_REGISTRIES.get(space)
        if registry is None:
            registry = _ENGINE_REGISTRIES[space] = LocalLockRegistry()
        return registry, db.namespace
    if db.ops.cross_process_locks:
        return _SERVER_REGISTRY, f"{space}\x00{db.namespace}"
    return _FILE_REGISTRIES.setdefault(str(space), LocalLockRegistry()), db.namespace


def hold_lock(
    db: Database, name: LockName, timeout: float | None
) -> AbstractAsyncContextManager[None]:
    """The lock `name` of `db`'s namespace for the body of an `async with`.

    Raises: `LockTimeout(str(name), timeout)` when not acquired in time.
    """
    return _hold(db, name, timeout)


@asynccontextmanager
async def _hold(db: Database, name: LockName, timeout: float | None) -> AsyncIterator[None]:
    deadline = None if timeout is None else time.monotonic() + timeout
    registry, prefix = _registry(db)
    async with registry.hold(f"{prefix}\x00{name.key}", str(name), timeout):
        if not db.ops.cross_process_locks:
            yield
            return
        slot = (str(db.lock_space()), db.ops.lock_key(name.digest(db.namespace)))
        await _acquire(db, slot, name, timeout, deadline)
        try:
            yield
        finally:
            await _release(slot, name)


async def _acquire(
    db: Database,
    slot: tuple[str, object],
    name: LockName,
    timeout: float | None,
    deadline: float | None,
) -> None:
    held = _HELD.get(slot)
    if held is not None:  # another name of ours hashed to the same server key
        held.holders += 1
        return
    conn = await db.checkout()
    try:
        backoff = FIRST_BACKOFF
        while True:
            async with translate_errors():
                taken = await db.ops.try_lock(conn, slot[1])
                await conn.commit()  # session locks outlive it; no transaction stays open
            if taken:
                break
            delay = backoff
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if timeout == 0 or remaining <= 0:
                    raise LockTimeout(str(name), timeout)
                delay = min(backoff, remaining)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter only
            backoff = min(backoff * 2, MAX_BACKOFF)
    except BaseException:
        await _discard(conn)
        raise
    _HELD[slot] = _Held(conn=conn, ops=db.ops)


async def _release(slot: tuple[str, object], name: LockName) -> None:
    held = _HELD[slot]
    held.holders -= 1
    if held.holders:
        return
    del _HELD[slot]
    try:
        released = await held.ops.unlock(held.conn, slot[1])
        await held.conn.commit()
        if not released:
            logger.warning("lock %s was lost while held; nothing to release", name)
    except Exception:
        logger.warning("lock %s was lost while held; nothing to release", name, exc_info=True)
        await _discard(held.conn)
        return
    except BaseException:
        await _discard(held.conn)
        raise
    await held.conn.close()


async def _discard(conn: AsyncConnection) -> None:
    """Close `conn` without returning it to the pool: its session, and its locks, end."""
    try:
        await conn.invalidate()
        await conn.close()
    except Exception:
        logger.debug("closing a lock connection failed", exc_info=True)
