"""Redis leases for `run_lock`/`step_lock`: `SET NX PX`, renewed while held, compare-and-delete.

Tasks of one process queue first on a process-local `LocalLockRegistry`, so only one of them
at a time polls Redis. Waits and leases run on real time (`time.monotonic`), never on the
service clock (D13). A lease lost while the body runs is logged at WARNING when the lock is
released, never raised. See docs/services/workflows.md#locks, docs/operations.md#storage-layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from pikku_storage._locks import LocalLockRegistry, LockName
from pikku_storage.errors import LockTimeout
from pikku_storage.redis._errors import (
    cancel_count,
    is_unavailable,
    raise_lost_cancellation,
    translate_errors,
)
from pikku_storage.redis._keys import WorkflowKeys
from pikku_storage.redis._rows import text
from pikku_storage.redis._scripts import Scripts

__all__ = ["RedisLocks"]

logger = logging.getLogger(__name__)

_MIN_BACKOFF: Final = 0.010
_MAX_BACKOFF: Final = 0.200


# Lock commands are safe to send twice (a token compare, or SET NX GET answering the holder),
# so each is retried once after a connection error: redis-py has already dropped the broken
# connection, and the retry takes a fresh one from the pool. After a server restart every idle
# pooled connection is stale, and a release that failed on one would leave the lock taken by
# nobody until its lease ran out (issue 17 item 4). Data commands are never resent (D17).
_RETRY_ONCE: Final = Retry(NoBackoff(), 1)


async def _on_broken(error: Exception) -> None:
    logger.debug("lock command failed on a broken connection, retrying once: %r", error)


async def _compare_and_delete(scripts: Scripts, lease: _Lease) -> object:
    """Delete the lock key if it still holds this lease's token; 1 if it did."""
    return await _RETRY_ONCE.call_with_retry(
        lambda: scripts("lock_release", [lease.key], [lease.token]), _on_broken
    )


class _Lease:
    """One held lease: its token and whether a renewal found it gone."""

    __slots__ = ("key", "lost", "token")

    def __init__(self, key: str, token: str) -> None:
        self.key = key
        self.token = token
        self.lost = False


class RedisLocks:
    """The lock primitive of one `RedisWorkflowService`."""

    __slots__ = ("_keys", "_lease_ms", "_local", "_renew_every")

    def __init__(self, keys: WorkflowKeys, lease: float) -> None:
        self._keys = keys
        self._lease_ms = max(1, round(lease * 1000))
        self._renew_every = lease / 3
        self._local = LocalLockRegistry()

    @asynccontextmanager
    async def hold(
        self, client: Redis, scripts: Scripts, name: LockName, timeout: float | None
    ) -> AsyncIterator[None]:
        """Hold lock `name` for the body; `LockTimeout` if not acquired within `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        async with self._local.hold(name.key, str(name), timeout):
            lease = await self._acquire(client, scripts, name, timeout, deadline)
            renewal = asyncio.create_task(
                self._renew(scripts, lease), name="pikku-redis-lock-renewal"
            )
            try:
                yield
            finally:
                renewal.cancel()
                await asyncio.wait({renewal})
                await self._release(scripts, lease, name)

    async def _acquire(
        self,
        client: Redis,
        scripts: Scripts,
        name: LockName,
        timeout: float | None,
        deadline: float | None,
    ) -> _Lease:
        lease = _Lease(self._keys.lock(name), secrets.token_hex(16))
        backoff = _MIN_BACKOFF
        before = cancel_count()
        try:
            while True:
                async with translate_errors():
                    # NX with GET answers the holder's token: ours when a SET whose reply was
                    # lost to a broken connection had taken it, before the retry.
                    holder = await _RETRY_ONCE.call_with_retry(
                        lambda: client.set(
                            lease.key, lease.token, nx=True, px=self._lease_ms, get=True
                        ),
                        _on_broken,
                    )
                taken = holder is None or text(holder) == lease.token
                raise_lost_cancellation(before)  # a cancelled waiter must not go on to hold it
                if taken:
                    logger.debug("lock %s acquired", name)
                    return lease
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise LockTimeout(str(name), timeout)
                delay = random.uniform(_MIN_BACKOFF, backoff)
                await asyncio.sleep(delay if remaining is None else min(delay, remaining))
                backoff = min(backoff * 2, _MAX_BACKOFF)
        except LockTimeout:
            raise
        except BaseException:
            # A SET whose reply was lost (cancellation, broken connection) may have taken the
            # lock: give back whatever this token holds, so a cancelled waiter holds nothing.
            with contextlib.suppress(Exception):
                await asyncio.shield(_compare_and_delete(scripts, lease))
            raise

    async def _renew(self, scripts: Scripts, lease: _Lease) -> None:
        """Every `lease / 3`, extend the lease if the token is still ours; stop once it is not."""
        before = cancel_count()
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                renewed = await _RETRY_ONCE.call_with_retry(
                    lambda: scripts("lock_renew", [lease.key], [lease.token, self._lease_ms]),
                    _on_broken,
                )
            except Exception:
                logger.debug("lock renewal failed, retrying at the next tick", exc_info=True)
                renewed = None
            raise_lost_cancellation(before)  # the release awaits this task: it must end
            if renewed is None:
                continue
            if renewed != 1:
                lease.lost = True
                return

    async def _release(self, scripts: Scripts, lease: _Lease, name: LockName) -> None:
        try:
            released = await _compare_and_delete(scripts, lease)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            logger.warning(
                "lock %s could not be released (Redis unavailable); it frees when its lease "
                "runs out",
                name,
            )
            return
        if released != 1 or lease.lost:
            logger.warning("lock %s was lost while held: its lease ran out", name)
        else:
            logger.debug("lock %s released", name)
