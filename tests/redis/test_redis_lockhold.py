"""Redis lock hold limits (05 §3.4, §5 item 27 [Redis]): at the deadline the renewal stops and
the key is deleted, while the fenced body is still inside."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pikku_storage import LockHoldExceeded
from pikku_storage._locks import LockName
from pikku_storage.redis._keys import WorkflowKeys
from pikku_testing._types import StorageFactory
from tests.redis._redis_support import client_of, prefix_of

RUN = "22222222-2222-4222-8222-222222222222"


@pytest.mark.pikku_backends("redis", "fakeredis")
@pytest.mark.real_time
async def test_a_lock_past_max_hold_deletes_its_key_and_is_not_renewed_again(
    pikku_storage_factory: StorageFactory,
) -> None:
    """05 §5 item 27 [Redis]: the key is gone at expiry, and no renewal follows (the holder's
    token planted back with a long TTL keeps it: a renewal would cut it to the lease)."""
    storage = await pikku_storage_factory(lock_lease=0.3)  # renewal every 0.1 s
    client = client_of(storage)
    key = WorkflowKeys(prefix_of(storage)).lock(LockName(RUN))
    inside, go_on = asyncio.Event(), asyncio.Event()
    tokens: list[object] = []

    async def body() -> None:
        async with storage.workflows.run_lock(RUN, timeout=0, max_hold=0.3):
            tokens.append(await client.get(key))  # the raw client is not fenced
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)
            inside.set()
            await go_on.wait()

    holder = asyncio.create_task(body())
    try:
        await asyncio.wait_for(inside.wait(), 30)
        for _ in range(100):  # the release started at the deadline; it needs a round trip
            if not await client.exists(key):
                break
            await asyncio.sleep(0.01)
        assert await client.exists(key) == 0
        [token] = tokens
        assert token is not None
        await client.set(key, token, px=5000)  # type: ignore[arg-type]  # bytes or str
        await asyncio.sleep(0.4)  # four renewal periods
        assert await client.pttl(key) > 1000
    finally:
        go_on.set()
        with pytest.raises(LockHoldExceeded):
            await holder
        await client.delete(key)
