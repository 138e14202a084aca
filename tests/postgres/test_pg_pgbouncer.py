"""Workflow locks behind PgBouncer (transaction pooling) and with every pool connection busy.

Issue 15 measured, through PgBouncer with two instances, B taking a run lock A held, A's unlock
missing, and a counter under `run_lock` losing an update; and on a plain server a pool cliff:
`max_size` concurrent holders whose bodies query stalled until the pool timeout. Locks now hold
their own connections (to `lock_url` behind a pooler, which `init()` demands), so these pass.
"""

from __future__ import annotations

import asyncio
from typing import Final

import psycopg
import pytest
from psycopg.rows import TupleRow

from pikku_storage import InvalidValue, LockTimeout, StorageUnavailable
from pikku_storage._locks import LockName
from pikku_storage.postgres import _errors, open_storage
from pikku_storage.postgres._locks import lock_key
from pikku_testing._types import StorageFactory

pytestmark = [pytest.mark.real_time]

Conn = psycopg.AsyncConnection[TupleRow]
TRIALS: Final = 40
INCREMENTS: Final = 40
BOTH: Final = pytest.mark.pikku_backends("postgres", "postgres-pgbouncer")
BOUNCER: Final = pytest.mark.pikku_backend("postgres-pgbouncer")


@BOTH
async def test_max_size_lock_holders_whose_bodies_query_all_finish(
    pikku_storage_factory: StorageFactory,
) -> None:
    """Issue 15: a held lock never needs a connection of the pool its body draws from."""
    max_size = 4
    storage = await pikku_storage_factory(max_size=max_size, timeout=5.0)
    wf = storage.workflows
    run_ids = [await wf.create_run("wf", {"i": i}) for i in range(max_size)]
    entered = asyncio.Barrier(max_size)

    async def holder(run_id: str) -> str:
        async with wf.run_lock(run_id, timeout=5):
            await entered.wait()  # every holder holds its lock before any body queries
            await wf.update_run_state(run_id, "seen", True)
            run = await wf.get_run(run_id)
            assert run is not None
            return run.id

    done = await asyncio.gather(*(holder(run_id) for run_id in run_ids))
    assert done == run_ids


@BOTH
async def test_nested_run_and_step_locks_of_max_size_holders_all_finish(
    pikku_storage_factory: StorageFactory,
) -> None:
    """Issue 15: nested run and step locks pin nothing of the data pool either."""
    max_size = 3
    storage = await pikku_storage_factory(max_size=max_size, timeout=5.0)
    wf = storage.workflows
    run_ids = [await wf.create_run("wf", None) for _ in range(max_size)]
    entered = asyncio.Barrier(max_size)

    async def holder(run_id: str) -> int:
        async with wf.run_lock(run_id, timeout=5), wf.step_lock(run_id, "s", timeout=5):
            await entered.wait()
            await wf.update_run_state(run_id, "n", 1)
            return len(await wf.get_run_state(run_id))

    assert await asyncio.gather(*(holder(r) for r in run_ids)) == [1] * max_size


@BOUNCER
async def test_another_instance_never_takes_a_held_run_lock_through_pgbouncer(
    pikku_storage_factory: StorageFactory,
) -> None:
    """Issue 15 measured B acquiring A's lock in 15 of 40 trials and 25 unlocks missed."""
    a = await pikku_storage_factory()
    b = await pikku_storage_factory()
    run_id = await a.workflows.create_run("wf", None)
    for _ in range(TRIALS):
        async with a.workflows.run_lock(run_id, timeout=5):
            await a.workflows.get_run(run_id)  # data traffic between lock and unlock
            with pytest.raises(LockTimeout):
                async with b.workflows.run_lock(run_id, timeout=0):
                    pass
        async with b.workflows.run_lock(run_id, timeout=0):  # A's unlock took effect
            await b.workflows.get_run(run_id)


@BOUNCER
async def test_a_counter_under_run_lock_loses_no_update_through_pgbouncer(
    pikku_storage_factory: StorageFactory,
) -> None:
    """Issue 15: read-modify-write under `run_lock` from two instances through PgBouncer."""
    a = await pikku_storage_factory()
    b = await pikku_storage_factory()
    run_id = await a.workflows.create_run("wf", None)
    await a.workflows.update_run_state(run_id, "count", 0)

    async def bump(times: int, storage_index: int) -> None:
        wf = (a, b)[storage_index].workflows
        for _ in range(times):
            async with wf.run_lock(run_id, timeout=10):
                count = (await wf.get_run_state(run_id))["count"]
                assert isinstance(count, int)
                await asyncio.sleep(0)
                await wf.update_run_state(run_id, "count", count + 1)

    half = INCREMENTS // 2
    await asyncio.gather(bump(half, 0), bump(half, 1), bump(half, 0), bump(half, 1))
    assert (await a.workflows.get_run_state(run_id))["count"] == 2 * INCREMENTS


@BOUNCER
async def test_no_advisory_lock_is_left_on_the_server_after_release_through_pgbouncer(
    pikku_storage_factory: StorageFactory,
    pikku_storage_open_args: tuple[str, dict[str, object]],
) -> None:
    """Issue 15 found 31 advisory locks leaked on PgBouncer's server connections: after
    release, a direct session can take every key at once."""
    a = await pikku_storage_factory()
    run_ids = [await a.workflows.create_run("wf", None) for _ in range(5)]
    for run_id in run_ids:
        async with a.workflows.run_lock(run_id, timeout=5):
            await a.workflows.get_run(run_id)
    _, options = pikku_storage_open_args
    schema, lock_url = options["schema"], options["lock_url"]
    assert isinstance(schema, str)
    assert isinstance(lock_url, str)
    keys = [lock_key(schema, LockName(run_id)) for run_id in run_ids]
    async with await psycopg.AsyncConnection.connect(lock_url, autocommit=True) as conn:
        for key in keys:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            assert await cur.fetchone() == (True,)
        await conn.execute("SELECT pg_advisory_unlock_all()")


@BOUNCER
async def test_init_refuses_workflow_locks_through_pgbouncer_without_lock_url(
    pikku_storage_open_args: tuple[str, dict[str, object]],
) -> None:
    """Issue 15: the wrong setting fails loudly at `init()` instead of losing exclusion."""
    url, options = pikku_storage_open_args
    storage = open_storage(url, schema=options["schema"], prepare_threshold=None, max_size=2)  # type: ignore[arg-type]  # a str, from the provider
    with pytest.raises(InvalidValue, match="lock_url"):
        await storage.init()
    await storage.close()


@BOUNCER
async def test_init_refuses_a_lock_url_that_is_itself_pgbouncer(
    pikku_storage_open_args: tuple[str, dict[str, object]],
) -> None:
    """Issue 15: `lock_url` must reach the server directly."""
    url, options = pikku_storage_open_args
    direct = options["lock_url"]
    assert isinstance(direct, str)
    storage = open_storage(direct, schema=options["schema"], lock_url=url, max_size=2)  # type: ignore[arg-type]  # a str, from the provider
    with pytest.raises(InvalidValue, match="lock_url"):
        await storage.init()
    await storage.close()


async def test_a_prepared_statement_clash_says_to_set_prepare_threshold_none() -> None:
    """Issue 15: a raw `DuplicatePreparedStatement` becomes `StorageUnavailable` saying what
    to set (PgBouncer < 1.21 in transaction mode shares server sessions between clients)."""
    for error in (
        psycopg.errors.DuplicatePreparedStatement("prepared statement _pg3_0 already exists"),
        psycopg.errors.InvalidSqlStatementName("prepared statement _pg3_3 does not exist"),
    ):
        with pytest.raises(StorageUnavailable, match="prepare_threshold=None") as info:
            async with _errors.translate_errors():
                raise error
        assert info.value.__cause__ is error
