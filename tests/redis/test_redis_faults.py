"""A private `redis-server` killed and restarted under the application.

Calls during the outage raise `StorageUnavailable`; writes interrupted by the kill are whole or
absent after the restart (the server keeps an append-only file, so the restart reloads exactly what
it acknowledged); the same `Storage` works again without being
rebuilt. Spec: 00 §6, 01 §6 item 61.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from pikku_storage import (
    Channel,
    DeploymentConfig,
    ManualClock,
    Message,
    MessageRole,
    Storage,
    StorageUnavailable,
    ToolCall,
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


async def _workload(
    storage: Storage, worker: int, progress: list[int], enough: asyncio.Event
) -> None:
    """Runs, steps, retries, threads and messages written as fast as one task can; `enough`
    is set once 40 rounds are done, all tasks together."""
    wf, ai = storage.workflows, storage.ai_storage
    thread_id = f"thread-{worker}"
    await ai.create_thread("res", thread_id=thread_id)
    for n in range(10_000):
        run_id = await wf.create_run(f"flow{worker}", {"n": n})
        step = await wf.insert_step_state(run_id, "a", None, None, retries=2)
        await wf.claim_step(step.step_id)
        await wf.set_step_error(step.step_id, {"message": "again"})
        await wf.create_retry_attempt(step.step_id, "running")
        await wf.set_step_result(step.step_id, n)
        await wf.update_run_status(run_id, "completed", output=n)
        await ai.save_messages(
            thread_id,
            [
                Message(id=f"m{n}", role=MessageRole.USER, content="q"),
                Message(
                    id=f"a{n}",
                    role=MessageRole.ASSISTANT,
                    tool_calls=[ToolCall(id=f"c{n}", name="t")],
                ),
            ],
        )
        progress[0] += 1
        if progress[0] >= 40:
            enough.set()


async def _check_consistent(storage: Storage) -> int:
    """Every run is whole: indexed under its status, steps and history agree (01 §3.5
    invariant), and every thread's messages are whole batches. Returns the runs checked."""
    runs = storage.workflow_runs
    listed = await runs.list_runs(limit=1000)
    by_status = {
        status: {r.id for r in await runs.list_runs(status=status, limit=1000)}
        for status in ("running", "completed")
    }
    for run in listed:
        assert run.id in by_status[run.status]
        steps = await runs.get_run_steps(run.id)
        history = await runs.get_run_history(run.id)
        for step in steps:
            attempts = [h for h in history if h.step_id == step.step_id]
            assert step.attempt_count == len(attempts)
            assert attempts[-1].status == step.status
            assert attempts[-1].result == step.result
    for thread in await storage.agent_runs.list_threads(limit=1000):
        messages = await storage.ai_storage.get_messages(thread.id)
        stored = [m.id for m in messages if not m.id.startswith("tool-results-")]
        assert len(stored) % 2 == 0  # a batch of two is stored whole or not at all
        assert stored == [i for n in range(len(stored) // 2) for i in (f"m{n}", f"a{n}")]
    return len(listed)


async def test_a_server_killed_mid_run_leaves_no_half_applied_write(
    private_redis: PrivateRedis,
) -> None:
    """00 §6: writes in flight when the server dies are whole or absent after its restart,
    and the application carries on with the same `Storage`."""
    async with open_storage(private_redis.url, clock=ManualClock()) as storage:
        progress, enough = [0], asyncio.Event()
        tasks = [asyncio.create_task(_workload(storage, w, progress, enough)) for w in range(8)]
        await enough.wait()
        private_redis.kill()  # the other tasks are in the middle of their calls
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert {type(r) for r in results} == {StorageUnavailable}
        private_redis.start()
        assert await _check_consistent(storage) >= 40
        run_id = await storage.workflows.create_run("after", None)
        assert (await storage.workflows.get_run(run_id)) is not None
        await storage.deployments.start(
            DeploymentConfig(deployment_id="d", endpoint="http://x", functions=["f"])
        )
        with contextlib.suppress(Exception):
            await storage.deployments.stop()


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
