"""PostgreSQL lock hold limits (05 §3.4, §5 item 27 [PG]): at the deadline the holder's session
unlocks its advisory lock (when it is the key's last holder) while the body is still inside."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import psycopg
import pytest
from psycopg.rows import TupleRow

from pikku_storage import LockHoldExceeded, Storage
from pikku_storage._locks import LockName
from pikku_storage.postgres import _locks

pytestmark = [pytest.mark.pikku_backend("postgres"), pytest.mark.real_time]

Conn = psycopg.AsyncConnection[TupleRow]
COLLIDING_KEY: Final = 0x5EED_0000_0000_0043
MAX_HOLD: Final = 0.3


async def _advisory_holders(admin: Conn, key: int) -> list[tuple[int, bool]]:
    """(pid, granted) of the sessions holding or awaiting the bigint advisory lock `key`."""
    cur = await admin.execute(
        "SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
        " AND classid = %(high)s::bigint::oid AND objid = %(low)s::bigint::oid"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
    )
    return [(int(pid), bool(granted)) for pid, granted in await cur.fetchall()]


async def _until_no_holder(admin: Conn, key: int) -> list[tuple[int, bool]]:
    for _ in range(100):  # the release started at the deadline; it needs a round trip
        holders = await _advisory_holders(admin, key)
        if not holders:
            break
        await asyncio.sleep(0.01)
    return holders


async def test_a_lock_past_max_hold_leaves_no_advisory_lock_in_the_holders_session(
    storage: Storage, admin: Conn
) -> None:
    """05 §5 item 27 [PG]: before the deadline the holder's session holds the key; after it,
    `pg_locks` shows nothing while the fenced body is still inside."""
    wf = storage.workflows
    run_id = await wf.create_run("wf", None)
    schema = storage.workflows._db.schema  # type: ignore[attr-defined]  # white-box
    key = _locks.lock_key(schema, LockName(run_id))
    inside, go_on = asyncio.Event(), asyncio.Event()
    seen: list[list[tuple[int, bool]]] = []

    async def body() -> None:
        async with wf.run_lock(run_id, timeout=0, max_hold=MAX_HOLD):
            seen.append(await _advisory_holders(admin, key))  # admin is not fenced
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)
            inside.set()
            await go_on.wait()

    holder = asyncio.create_task(body())
    try:
        await asyncio.wait_for(inside.wait(), 30)
        assert await _until_no_holder(admin, key) == []
        assert [granted for _, granted in seen[0]] == [True]
    finally:
        go_on.set()
        with pytest.raises(LockHoldExceeded):
            await holder
    async with wf.run_lock(run_id, timeout=0):
        assert await wf.get_run(run_id) is not None


async def test_an_expired_lock_sharing_its_key_keeps_it_for_the_other_holder(
    storage: Storage, admin: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """05 §3.4: with the run and step lock colliding on one key, the step lock's expiry frees
    only its process-local stage; the key is unlocked when the run lock, its last holder,
    leaves."""
    monkeypatch.setattr(_locks, "lock_key", lambda schema, name: COLLIDING_KEY)
    wf = storage.workflows
    run_id = await wf.create_run("wf", None)
    async with wf.run_lock(run_id, timeout=1):
        with pytest.raises(LockHoldExceeded):
            async with wf.step_lock(run_id, "s", timeout=1, max_hold=MAX_HOLD):
                await asyncio.sleep(10)
        assert [granted for _, granted in await _advisory_holders(admin, COLLIDING_KEY)] == [True]
        async with wf.step_lock(run_id, "s", timeout=0):
            pass
    assert await _advisory_holders(admin, COLLIDING_KEY) == []
