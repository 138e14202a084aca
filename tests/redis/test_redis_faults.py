"""A private `redis-server` killed and restarted under the application; lost cancellations.

Every kind of call during the outage raises `StorageUnavailable`, and the same `Storage` works
again without being rebuilt. Restarts in the middle of a stream of writes, and what the store
holds afterwards, are in tests/faults. Spec: 00 §6, 01 §6 item 61.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from pikku_storage import (
    Channel,
    ManualClock,
    Storage,
    StorageUnavailable,
)
from pikku_storage.redis import open_storage
from tests.redis._redis_support import PrivateRedis, client_of


def _outage_calls(
    storage: Storage, run_id: str, step_id: str
) -> list[Callable[[], Awaitable[object]]]:
    wf, runs, ai = storage.workflows, storage.workflow_runs, storage.ai_storage

    async def lock() -> None:
        async with wf.run_lock(run_id, timeout=0):
            pass

    return [
        lambda: wf.create_run("flow", 2),
        lambda: wf.get_run(run_id),
        lambda: wf.update_run_status(run_id, "completed"),
        lambda: wf.set_step_running(step_id),
        lambda: wf.claim_step(step_id),
        lambda: runs.list_runs(),
        lambda: runs.delete_run(run_id),
        lock,
        lambda: ai.create_thread("res"),
        lambda: ai.get_messages("t"),
        lambda: storage.ai_run_state.get_run(run_id),
        lambda: storage.agent_runs.list_threads(),
        lambda: storage.channels.add_channel(Channel(channel_id="c", channel_name="n")),
        lambda: storage.eventhub.get_channel_ids_for_topic("t"),
        lambda: storage.deployments.list_deployments(),
    ]


@pytest.mark.real_time
async def test_calls_during_an_outage_raise_storage_unavailable_and_the_app_recovers(
    private_redis: PrivateRedis,
) -> None:
    """01 §6 item 61: with the server gone every kind of call raises `StorageUnavailable`;
    once it is back, the same services work again, scripts reloaded on `NOSCRIPT`."""
    async with open_storage(private_redis.url, clock=ManualClock()) as storage:
        wf = storage.workflows
        run_id = await wf.create_run("flow", 1)
        step = await wf.insert_step_state(run_id, "a", None, None)
        private_redis.kill()
        for call in _outage_calls(storage, run_id, step.step_id):
            with pytest.raises(StorageUnavailable):
                await call()
        private_redis.start()
        assert await client_of(storage).script_exists("0" * 40) == [False]  # cache emptied
        assert (await wf.get_step_state(run_id, "a")).status == "pending"
        claimed = await wf.claim_step(step.step_id)
        assert claimed is not None
        assert claimed.status == "running"
        async with wf.run_lock(run_id, timeout=0):
            await wf.update_run_status(run_id, "completed", output=1)
        assert (await storage.workflow_runs.list_runs())[0].status == "completed"


@pytest.mark.pikku_backends("redis", "fakeredis")
@pytest.mark.real_time
async def test_a_cancelled_task_never_outlives_its_cancellation(pikku_storage: Storage) -> None:
    """A cancellation that lands while redis-py sends a command is not lost: on Python 3.11
    its `asyncio.wait_for` can swallow it (CPython gh-86296), so a cancelled heartbeat or
    lease renewal would loop on and `stop()`/release would wait for it forever."""
    hub = pikku_storage.eventhub
    for trial in range(200):

        async def calls() -> None:
            while True:
                await asyncio.sleep(0)
                await hub.get_channel_ids_for_topic("t")

        task = asyncio.create_task(calls())
        for _ in range(trial % 23 + 1):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, f"the task survived its cancellation (trial {trial})"


@pytest.mark.pikku_backends("redis", "fakeredis")
@pytest.mark.real_time
async def test_calls_in_a_cancellation_handler_still_complete(pikku_storage: Storage) -> None:
    """Restoring a lost cancellation never breaks cleanup: calls made while a delivered
    cancellation is being handled run to the end."""
    channels, done = pikku_storage.channels, []

    async def body() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await channels.add_channel(Channel(channel_id="cleanup", channel_name="n"))
            await channels.touch("cleanup")
            done.append(True)
            raise

    task = asyncio.create_task(body())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == [True]
    assert (await channels.get_channel_and_session("cleanup")).channel_name == "n"
