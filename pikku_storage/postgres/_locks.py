"""Run and step locks as PostgreSQL session advisory locks on dedicated lock connections.

Acquire: a process-local asyncio lock per name first (tasks of one process queue without
holding connections); then, unless this service already holds the same 64-bit key for another
name (a hash collision: count one more holder), a lock connection (never one of the data pool's,
so a held lock cannot starve its body; to `lock_url` when given) runs `pg_advisory_lock` under
a statement-scoped `lock_timeout` (`pg_try_advisory_lock` for a zero timeout). Release:
`pg_advisory_unlock` when the key's last holder leaves. A connection whose acquire or release
failed or was cancelled midway is closed, which frees its session locks. Waits use real time.
`open()` refuses a lock connection that reaches the server through a pooler (PgBouncer in
transaction mode would run the unlock, or the next lock, on another server session).
See docs/services/workflows.md#locks, docs/operations.md#storage-layout.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Final

import psycopg
from psycopg.sql import SQL
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests

from pikku_storage._locks import LocalLockRegistry, LockName
from pikku_storage.errors import InvalidValue, LockTimeout, StorageUnavailable
from pikku_storage.postgres._connection import (
    Conn,
    LockConnections,
    PgDatabase,
    fetch_one,
    through_pooler,
)
from pikku_storage.postgres._errors import is_connection_error, is_lock_timeout, translate_errors

__all__ = ["PgLocks", "lock_key"]

logger = logging.getLogger(__name__)

_MAX_MS = 2**31 - 1  # lock_timeout's ceiling; longer timeouts are None already (v.timeout)
# lock_timeout is scoped to the statement's own transaction (autocommit): set_config(…, true).
_LOCK: Final = SQL(
    "WITH timeout AS MATERIALIZED (SELECT set_config('lock_timeout', %(timeout)s, true) AS t)"
    " SELECT pg_advisory_lock(%(key)s) FROM timeout"
)
_TRY_LOCK: Final = SQL("SELECT pg_try_advisory_lock(%(key)s)")
_UNLOCK: Final = SQL("SELECT pg_advisory_unlock(%(key)s)")


def _broken_connection(exc: BaseException) -> bool:
    """A `StorageUnavailable` raised because a connection failed in use; not the pool's own
    errors (no connection within its timeout, closed), which the pool already retried."""
    cause = exc.__cause__
    if isinstance(cause, PoolTimeout | PoolClosed | TooManyRequests):
        return False
    return isinstance(cause, psycopg.Error) and is_connection_error(cause)


def lock_key(schema: str, name: LockName) -> int:
    """The first 8 bytes of SHA-256 over schema, U+0000 and the lock name, as a signed int64."""
    return int.from_bytes(name.digest(schema)[:8], "big", signed=True)


@dataclass(slots=True)
class _Held:
    conn: Conn
    autocommit: bool
    holders: int = 1


class PgLocks:
    """The advisory locks one `PgWorkflowService` holds, on connections of their own."""

    __slots__ = ("_conns", "_db", "_held", "_local")

    def __init__(self, db: PgDatabase, lock_url: str | None = None) -> None:
        self._db = db
        self._conns = LockConnections(db.pool, lock_url)
        self._local = LocalLockRegistry()
        self._held: dict[int, _Held] = {}

    async def open(self) -> None:
        """Check that lock connections reach PostgreSQL directly, not through a pooler.

        Raises: `InvalidValue` when they go through one (PgBouncer): session advisory locks
        would silently stop excluding, so `lock_url` must name a direct connection.
        """
        async with translate_errors():
            conn = await self._conns.get()
            try:
                pooled = await through_pooler(conn)
            except BaseException:
                await self._conns.put(conn, broken=True)
                raise
            await self._conns.put(conn)
        if pooled:
            raise InvalidValue(
                "workflow locks are PostgreSQL session advisory locks, which a connection "
                "pooler (PgBouncer in transaction mode) does not keep on one server session; "
                "pass lock_url= a direct connection to the server (the pooler's own "
                "connections stay for data), e.g. open_storage(url, lock_url=direct_url, "
                "prepare_threshold=None)"
            )

    async def close(self) -> None:
        """Close every lock connection: the locks still held end with their sessions."""
        held = list(self._held.values())
        self._held.clear()
        for item in held:
            with contextlib.suppress(Exception):
                await item.conn.close()
        await self._conns.close()

    def lock(self, name: LockName, timeout: float | None) -> AbstractAsyncContextManager[None]:
        return self._hold(name, timeout)

    @asynccontextmanager
    async def _hold(self, name: LockName, timeout: float | None) -> AsyncIterator[None]:
        deadline = None if timeout is None else time.monotonic() + timeout
        label = str(name)
        async with self._local.hold(name.key, label, timeout):
            key = lock_key(self._db.schema, name)
            held = self._held.get(key)
            if held is not None:
                held.holders += 1
                logger.debug("lock key of %s already held by this service (collision)", label)
            else:
                held = await self._acquire(key, label, timeout, deadline)
                self._held[key] = held
            try:
                yield
            finally:
                await self._release(key, held, label)

    async def _acquire(
        self, key: int, label: str, timeout: float | None, deadline: float | None
    ) -> _Held:
        """Take the key on a dedicated connection; once more on a fresh one if that connection
        turns out to be broken (the pool hands out idle connections unchecked, so after a
        server restart every idle one is stale: the failure sweeps them, as the data path does).
        A broken session holds no advisory lock, so the second attempt is safe."""
        try:
            return await self._acquire_once(key, label, timeout, deadline)
        except StorageUnavailable as exc:
            if not _broken_connection(exc):
                raise
            logger.warning("lock %s: connection broken, retrying on a fresh one", label)
            await self._conns.close()  # idle lock connections died with it
            await self._db.recover()
        return await self._acquire_once(key, label, timeout, deadline)

    async def _acquire_once(
        self, key: int, label: str, timeout: float | None, deadline: float | None
    ) -> _Held:
        async with translate_errors():
            conn = await self._conns.get()
        held = _Held(conn, conn.autocommit)
        try:
            async with translate_errors():
                if not held.autocommit:
                    await conn.set_autocommit(True)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    row = await fetch_one(conn, _TRY_LOCK, {"key": key})
                    acquired = row is not None and row[0] is True
                else:
                    ms = (
                        "0"
                        if remaining is None
                        else str(min(_MAX_MS, max(1, math.ceil(remaining * 1000))))
                    )
                    try:
                        await fetch_one(conn, _LOCK, {"timeout": ms, "key": key})
                        acquired = True
                    except Exception as exc:
                        if not is_lock_timeout(exc):
                            raise
                        acquired = False
        except BaseException:
            await self._discard(held)  # failed or cancelled midway: the session may hold it
            raise
        if not acquired:
            await self._give_back(held)
            raise LockTimeout(label, timeout)
        return held

    async def _release(self, key: int, held: _Held, label: str) -> None:
        held.holders -= 1
        if held.holders > 0:
            return
        if self._held.get(key) is held:
            del self._held[key]  # before the unlock: a new holder takes its own connection
        if held.conn.closed:
            logger.warning("lock %s was released by close() while held", label)
            return
        try:
            async with translate_errors():
                row = await fetch_one(held.conn, _UNLOCK, {"key": key})
        except BaseException as exc:
            await self._discard(held)
            if not isinstance(exc, Exception):
                raise
            logger.warning("lock %s was lost while held (connection broken)", label, exc_info=True)
            if _broken_connection(exc):
                await self._conns.close()  # the other idle connections died with it
                await self._db.recover()
            return
        if row is None or row[0] is not True:
            logger.warning("lock %s was lost while held (session reset)", label)
        await self._give_back(held)

    async def _give_back(self, held: _Held) -> None:
        """Return a healthy lock connection as it was lent."""
        try:
            if not held.autocommit:
                await held.conn.set_autocommit(False)
        finally:
            await self._conns.put(held.conn)

    async def _discard(self, held: _Held) -> None:
        """Close a connection in an unknown state (its session locks die with it)."""
        await self._conns.put(held.conn, broken=True)
