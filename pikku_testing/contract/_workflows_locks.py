"""Workflow contract, run and step locks (see docs/contract.md, 32 to 37; 38 to 40 are backend
tests)."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from pikku_storage import Storage
from pikku_storage.errors import LockTimeout
from pikku_storage.interfaces import WorkflowService
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_workflows import expect_invalid, new_run, snapshot
from pikku_testing.contract._capabilities import Capability, requires

__all__ = ["WorkflowLockTests"]

_WORKERS = 8
_INCREMENTS = 25

# Run by a second OS process: open the namespace, then add 1 to state "n" `count` times under
# the run lock, reading, yielding and writing inside it (docs/services/workflows.md#locks).
_COUNTER_SCRIPT = """
import asyncio, json, sys
from pikku_storage import open_storage
from pikku_storage.clock import ManualClock

async def main():
    url, options, run_id, count = json.loads(sys.argv[1])
    async with open_storage(url, clock=ManualClock(), **options) as storage:
        wf = storage.workflows
        print("ready", flush=True)
        for _ in range(count):
            async with wf.run_lock(run_id, timeout=30):
                value = (await wf.get_run_state(run_id))["n"]
                await asyncio.sleep(0.001)
                await wf.update_run_state(run_id, "n", value + 1)

asyncio.run(main())
"""


async def _enter(lock: AbstractAsyncContextManager[None]) -> None:
    async with lock:
        pass


async def _one() -> int:
    return 1


async def _assert_times_out(lock: AbstractAsyncContextManager[None], timeout: float) -> None:
    """Entering `lock` raises `LockTimeout` (a `TimeoutError`) no sooner than `timeout` and
    within 1 s after it (docs/services/workflows.md#locks)."""
    start = time.monotonic()
    with pytest.raises(LockTimeout) as info:
        await _enter(lock)
    elapsed = time.monotonic() - start
    assert isinstance(info.value, TimeoutError)
    assert timeout <= elapsed <= timeout + 1.0, elapsed


async def _increment(wf: WorkflowService, run_id: str, count: int) -> None:
    for _ in range(count):
        async with wf.run_lock(run_id, timeout=30):
            value = (await wf.get_run_state(run_id))["n"]
            await asyncio.sleep(0)
            assert isinstance(value, int)
            await wf.update_run_state(run_id, "n", value + 1)


class WorkflowLockTests:
    """docs/services/workflows.md#locks item 32 to 37: run and step locks within and across
    instances."""

    # --- 32 -------------------------------------------------------------------------------

    async def test_with_run_lock_returns_the_value_of_fn_and_releases(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 32."""
        other = await storage_factory()
        run_id = await new_run(storage)

        async def fn() -> dict[str, int]:
            return {"v": 1}

        assert await storage.workflows.with_run_lock(run_id, fn) == {"v": 1}
        await _enter(other.workflows.run_lock(run_id, timeout=0))

    async def test_with_run_lock_reraises_the_same_exception_and_releases(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 32."""
        other = await storage_factory()
        run_id = await new_run(storage)
        boom = RuntimeError("boom")

        async def fn() -> None:
            raise boom

        with pytest.raises(RuntimeError) as info:
            await storage.workflows.with_run_lock(run_id, fn)
        assert info.value is boom
        await _enter(other.workflows.run_lock(run_id, timeout=0))

    async def test_with_step_lock_returns_the_value_of_fn_and_releases(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 32."""
        other = await storage_factory()
        run_id = await new_run(storage)
        assert await storage.workflows.with_step_lock(run_id, "s", _one, timeout=1) == 1
        await _enter(other.workflows.step_lock(run_id, "s", timeout=0))

    async def test_with_step_lock_reraises_the_same_exception_and_releases(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 32."""
        other = await storage_factory()
        run_id = await new_run(storage)
        boom = KeyError("boom")

        async def fn() -> None:
            raise boom

        with pytest.raises(KeyError) as info:
            await storage.workflows.with_step_lock(run_id, "s", fn)
        assert info.value is boom
        await _enter(other.workflows.step_lock(run_id, "s", timeout=0))

    # --- 33 -------------------------------------------------------------------------------

    @pytest.mark.real_time
    async def test_run_lock_contender_gets_lock_timeout_after_its_timeout(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 33."""
        other = await storage_factory()
        run_id = await new_run(storage)
        async with storage.workflows.run_lock(run_id):
            await _assert_times_out(other.workflows.run_lock(run_id, timeout=0.1), 0.1)
            with pytest.raises(LockTimeout) as info:
                await _enter(other.workflows.run_lock(run_id, timeout=0))
            assert run_id in str(info.value)

    @pytest.mark.real_time
    async def test_step_lock_contender_gets_lock_timeout_after_its_timeout(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 33."""
        other = await storage_factory()
        run_id = await new_run(storage)
        async with storage.workflows.step_lock(run_id, "s"):
            await _assert_times_out(other.workflows.step_lock(run_id, "s", timeout=0.1), 0.1)

    @pytest.mark.real_time
    async def test_lock_with_timeout_zero_fails_at_once(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 33."""
        other = await storage_factory()
        run_id = await new_run(storage)
        async with storage.workflows.run_lock(run_id), storage.workflows.step_lock(run_id, "s"):
            await _assert_times_out(other.workflows.run_lock(run_id, timeout=0), 0)
            await _assert_times_out(other.workflows.step_lock(run_id, "s", timeout=0), 0)

    @pytest.mark.real_time
    async def test_lock_with_timeout_none_waits_for_the_release(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 33."""
        other = await storage_factory()
        run_id = await new_run(storage)
        async with storage.workflows.run_lock(run_id):
            waiter = asyncio.create_task(other.workflows.with_run_lock(run_id, _one, timeout=None))
            await asyncio.sleep(0.05)
            assert not waiter.done()
        assert await asyncio.wait_for(waiter, 10) == 1

    # --- 34 -------------------------------------------------------------------------------

    async def test_step_locks_of_different_step_names_do_not_contend(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 34."""
        other = await storage_factory()
        run_id = await new_run(storage)
        async with storage.workflows.step_lock(run_id, "a"):
            await _enter(other.workflows.step_lock(run_id, "b", timeout=0))
            await _enter(other.workflows.step_lock(run_id, "a ", timeout=0))

    async def test_run_lock_and_step_lock_of_one_run_do_not_contend(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 34."""
        other = await storage_factory()
        run_id = await new_run(storage)
        async with storage.workflows.run_lock(run_id):
            await _enter(other.workflows.step_lock(run_id, "s", timeout=0))
        async with storage.workflows.step_lock(run_id, "s"):
            await _enter(other.workflows.run_lock(run_id, timeout=0))

    async def test_step_lock_inside_its_run_lock_completes(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 34."""
        run_id = await new_run(storage)
        wf = storage.workflows
        async with wf.run_lock(run_id, timeout=1), wf.step_lock(run_id, "s", timeout=1):
            assert await wf.with_step_lock(run_id, "t", _one, timeout=1) == 1
        other = await storage_factory()
        await _enter(other.workflows.run_lock(run_id, timeout=0))
        await _enter(other.workflows.step_lock(run_id, "s", timeout=0))

    # --- 35 -------------------------------------------------------------------------------

    @pytest.mark.real_time
    async def test_retaking_a_held_lock_in_the_same_task_raises_lock_timeout(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#locks item 35."""
        wf = storage.workflows
        run_id = await new_run(storage)
        async with wf.run_lock(run_id):
            await _assert_times_out(wf.run_lock(run_id, timeout=0.2), 0.2)
        async with wf.step_lock(run_id, "s"):
            await _assert_times_out(wf.step_lock(run_id, "s", timeout=0), 0)

    async def test_entering_a_used_lock_context_manager_again_raises_runtime_error(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#locks item 35."""
        wf = storage.workflows
        run_id = await new_run(storage)
        for lock in (wf.run_lock(run_id), wf.step_lock(run_id, "s")):
            async with lock:
                with pytest.raises(RuntimeError):
                    await _enter(lock)
            with pytest.raises(RuntimeError):
                await _enter(lock)
        await _enter(wf.run_lock(run_id, timeout=0))
        await _enter(wf.step_lock(run_id, "s", timeout=0))

    # --- 36 -------------------------------------------------------------------------------

    @pytest.mark.real_time
    async def test_cancelled_lock_waiter_leaves_nothing_held(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 36."""
        other = await storage_factory()
        run_id = await new_run(storage)
        async with storage.workflows.run_lock(run_id):
            waiter = asyncio.create_task(_enter(other.workflows.run_lock(run_id, timeout=None)))
            await asyncio.sleep(0.05)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        await _enter(storage.workflows.run_lock(run_id, timeout=0))
        await _enter(other.workflows.run_lock(run_id, timeout=0))

    async def test_cancelled_lock_holder_releases_and_reraises(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 36."""
        other = await storage_factory()
        run_id = await new_run(storage)
        entered = asyncio.Event()

        async def hold() -> None:
            async with storage.workflows.run_lock(run_id):
                entered.set()
                await asyncio.Event().wait()

        holder = asyncio.create_task(hold())
        await entered.wait()
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        await _enter(other.workflows.run_lock(run_id, timeout=0))

    async def test_close_releases_held_locks(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 36."""
        closing = await storage_factory()
        run_id = await new_run(storage)
        entered, finish = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            wf = closing.workflows
            async with wf.run_lock(run_id), wf.step_lock(run_id, "s"):
                entered.set()
                await finish.wait()

        holder = asyncio.create_task(hold())
        await entered.wait()
        await closing.workflows.close()
        await _enter(storage.workflows.run_lock(run_id, timeout=0))
        await _enter(storage.workflows.step_lock(run_id, "s", timeout=0))
        finish.set()
        await holder

    async def test_locks_on_a_nonexistent_run_work_and_create_nothing(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#locks item 36."""
        wf = storage.workflows
        missing = "00000000-0000-4000-8000-000000000000"
        for run_id in (missing, "not-a-run"):
            async with wf.run_lock(run_id, timeout=0), wf.step_lock(run_id, "s", timeout=0):
                pass
            assert await wf.with_run_lock(run_id, _one, timeout=0) == 1
            assert await wf.with_step_lock(run_id, "s", _one, timeout=0) == 1
        assert await snapshot(storage, [missing]) == [[], [], None, {}, [], []]

    async def test_lock_timeouts_must_be_finite_and_non_negative(self, storage: Storage) -> None:
        """docs/services/workflows.md#locks item 36."""
        wf = storage.workflows
        run_id = await new_run(storage)
        for timeout in (-1, -0.001, math.nan, math.inf, -math.inf, True, "1"):
            bad: Any = timeout
            await expect_invalid("run_lock", _enter_run_lock, wf, run_id, bad)
            await expect_invalid("step_lock", _enter_step_lock, wf, run_id, bad)
            await expect_invalid("with_run_lock", _with_run_lock, wf, run_id, bad)
            await expect_invalid("with_step_lock", _with_step_lock, wf, run_id, bad)
        await _enter(wf.run_lock(run_id, timeout=0))
        await _enter(wf.step_lock(run_id, "s", timeout=0))

    # --- 37 -------------------------------------------------------------------------------

    @pytest.mark.real_time
    async def test_run_lock_keeps_a_shared_counter_exact_across_two_instances(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/services/workflows.md#locks item 37."""
        other = await storage_factory()
        run_id = await new_run(storage)
        await storage.workflows.update_run_state(run_id, "n", 0)
        services = [storage.workflows, other.workflows]
        await asyncio.gather(
            *(_increment(services[i % 2], run_id, _INCREMENTS) for i in range(_WORKERS))
        )
        assert await storage.workflows.get_run_state(run_id) == {"n": _WORKERS * _INCREMENTS}

    @requires(Capability.CROSS_PROCESS_LOCKS)
    @pytest.mark.real_time
    async def test_run_lock_keeps_a_shared_counter_exact_across_processes(
        self, storage: Storage, storage_open_args: tuple[str, dict[str, object]]
    ) -> None:
        """docs/services/workflows.md#locks item 37 ([X] also with a second OS process)."""
        url, options = storage_open_args
        run_id = await new_run(storage)
        await storage.workflows.update_run_state(run_id, "n", 0)
        argument = json.dumps([url, options, run_id, _INCREMENTS])
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _COUNTER_SCRIPT,
            argument,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            ready = await asyncio.wait_for(process.stdout.readline(), 60)
            if ready.strip() != b"ready":
                _, stderr = await process.communicate()
                pytest.fail(f"counter process did not start: {stderr.decode(errors='replace')}")
            await asyncio.gather(
                *(_increment(storage.workflows, run_id, _INCREMENTS) for _ in range(3))
            )
            _, stderr = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0, stderr.decode(errors="replace")
        assert await storage.workflows.get_run_state(run_id) == {"n": 4 * _INCREMENTS}


async def _enter_run_lock(wf: WorkflowService, run_id: str, timeout: Any) -> None:
    await _enter(wf.run_lock(run_id, timeout=timeout))


async def _enter_step_lock(wf: WorkflowService, run_id: str, timeout: Any) -> None:
    await _enter(wf.step_lock(run_id, "s", timeout=timeout))


async def _with_run_lock(wf: WorkflowService, run_id: str, timeout: Any) -> None:
    await wf.with_run_lock(run_id, _one, timeout=timeout)


async def _with_step_lock(wf: WorkflowService, run_id: str, timeout: Any) -> None:
    await wf.with_step_lock(run_id, "s", _one, timeout=timeout)
