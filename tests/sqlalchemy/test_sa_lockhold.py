"""MySQL lock hold limits (05 §3.4): at the deadline `RELEASE_LOCK` runs on the dedicated
connection while the fenced body is still inside."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pikku_storage import LockHoldExceeded, Storage
from pikku_storage._locks import LockName
from tests.sqlalchemy.sa_helpers import connect, database

pytestmark = [pytest.mark.pikku_backend("sqlalchemy-mysql"), pytest.mark.real_time]


async def test_a_lock_past_max_hold_is_released_on_the_server_at_once(
    pikku_storage: Storage,
) -> None:
    """05 §3.4: `IS_FREE_LOCK` is 0 before the deadline and 1 after it, body still inside."""
    db = database(pikku_storage)
    wf = pikku_storage.workflows
    run_id = "6c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
    name = str(db.ops.lock_key(LockName(run_id).digest(db.namespace)))
    inside, go_on = asyncio.Event(), asyncio.Event()
    seen: list[object] = []

    async def body() -> None:
        async with wf.run_lock(run_id, timeout=0, max_hold=0.3), connect(db) as conn:
            seen.append((await conn.exec_driver_sql("SELECT IS_FREE_LOCK(%s)", (name,))).scalar())
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)
            inside.set()
            await go_on.wait()

    holder = asyncio.create_task(body())
    try:
        await asyncio.wait_for(inside.wait(), 30)
        async with connect(db) as conn:
            for _ in range(100):  # the release started at the deadline; it needs a round trip
                free = (await conn.exec_driver_sql("SELECT IS_FREE_LOCK(%s)", (name,))).scalar()
                if free == 1:
                    break
                await asyncio.sleep(0.01)
        assert free == 1
        assert seen == [0]
    finally:
        go_on.set()
        with pytest.raises(LockHoldExceeded):
            await holder
