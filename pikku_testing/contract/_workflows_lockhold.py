"""Workflow contract, lock hold limits: `max_hold` on run and step locks (see
docs/services/workflows.md#locks; spec 05 §5 items 24 to 27).

Lock timing runs on real time. The bounds are the spec's (exit after `max_hold`, within 1 s
more); the machine running the suite may be loaded, so nothing here is tighter than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

import pytest

from pikku_storage import Storage
from pikku_storage.errors import LockHoldExceeded, LockTimeout
from pikku_storage.interfaces import WorkflowService
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_workflows import expect_invalid, new_run
from pikku_testing.contract._capabilities import Capability, requires

__all__ = ["WorkflowLockHoldTests"]

MAX_HOLD: Final = 0.3  # item 24's; also where the body must finish something before the deadline
# Where the spec names no duration and nothing has to happen before the deadline: the wait is
# all the test costs, and 0.1 s is still far above the event loop's timer resolution.
SHORT_HOLD: Final = 0.1
GRACE: Final = 1.0  # how long after the deadline the exit and a contender may take
POLL: Final = 0.01

LockFactory = Callable[..., AbstractAsyncContextManager[None]]

# Run by a second OS process: open the namespace, say "ready", wait for a line on stdin, then
# try `run_lock(run_id, timeout=0)` every 10 ms until it is acquired and print when
# (`time.monotonic()`, one clock for every process on Linux).
_CONTENDER_SCRIPT: Final = """
import asyncio, json, sys, time
from pikku_storage import open_storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import LockTimeout

async def main():
    url, options, run_id = json.loads(sys.argv[1])
    async with open_storage(url, clock=ManualClock(), **options) as storage:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        give_up = time.monotonic() + 30
        while time.monotonic() < give_up:
            try:
                async with storage.workflows.run_lock(run_id, timeout=0):
                    print(json.dumps(time.monotonic()), flush=True)
                    return
            except LockTimeout:
                await asyncio.sleep(0.01)
        print("null", flush=True)

asyncio.run(main())
"""


async def _enter(lock: AbstractAsyncContextManager[None]) -> None:
    async with lock:
        pass


async def _one() -> int:
    return 1


async def _sleep_long() -> int:
    await asyncio.sleep(10)
    return 1


async def _acquire_when_free(lock: LockFactory, give_up: float) -> float:
    """Try `lock(timeout=0)` every 10 ms until it is acquired; when it was (monotonic)."""
    while True:
        try:
            async with lock(timeout=0):
                return time.monotonic()
        except LockTimeout:
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(POLL)


async def _holds_past_max_hold(holder: LockFactory, contender: LockFactory, name: str) -> None:
    """A body sleeping 10 s under `holder(max_hold=0.3)`: leaving raises `LockHoldExceeded`
    (a `TimeoutError`, not a `LockTimeout`, chained from the cancellation) after the deadline
    and within 1 s of it, and `contender(timeout=0)` on another instance succeeds within 1 s of
    the deadline, while failing before it."""
    acquired: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def body() -> None:
        async with holder(max_hold=MAX_HOLD):
            acquired.set_result(time.monotonic())
            with pytest.raises(LockTimeout):
                await _enter(contender(timeout=0))
            await asyncio.sleep(10)

    async def hold() -> tuple[float, float, LockHoldExceeded]:
        before = time.monotonic()
        with pytest.raises(LockHoldExceeded) as info:
            await body()
        return before, time.monotonic() - before, info.value

    async def contend() -> float:
        start = await acquired
        await asyncio.sleep(max(0.0, start + MAX_HOLD - time.monotonic()))
        return await _acquire_when_free(contender, start + MAX_HOLD + GRACE + 5) - start

    (before, held, error), taken = await asyncio.gather(hold(), contend())
    start = acquired.result()
    assert isinstance(error, TimeoutError)
    assert not isinstance(error, LockTimeout)
    assert isinstance(error.__cause__, asyncio.CancelledError)
    assert error.max_hold == MAX_HOLD
    assert name in error.lock_name
    assert MAX_HOLD <= held <= (start - before) + MAX_HOLD + GRACE, held
    assert taken <= MAX_HOLD + GRACE, taken


class WorkflowLockHoldTests:
    """docs/services/workflows.md#locks, lock hold limits (spec 05 §5 items 24 to 27): a lock
    held past `max_hold` is taken back, its body cancelled and fenced."""

    # --- 24 -------------------------------------------------------------------------------

    @pytest.mark.real_time
    async def test_run_lock_held_past_max_hold_raises_lock_hold_exceeded_and_frees_the_lock(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """05 §5 item 24 (run lock)."""
        other = (await storage_factory()).workflows
        wf = storage.workflows
        run_id = await new_run(storage)
        await _holds_past_max_hold(
            lambda **kw: wf.run_lock(run_id, **kw),
            lambda **kw: other.run_lock(run_id, **kw),
            run_id,
        )

    @pytest.mark.real_time
    async def test_step_lock_held_past_max_hold_raises_lock_hold_exceeded_and_frees_the_lock(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """05 §5 item 24 (step lock)."""
        other = (await storage_factory()).workflows
        wf = storage.workflows
        run_id = await new_run(storage)
        await _holds_past_max_hold(
            lambda **kw: wf.step_lock(run_id, "s", **kw),
            lambda **kw: other.step_lock(run_id, "s", **kw),
            run_id,
        )

    # --- 25 -------------------------------------------------------------------------------

    @pytest.mark.real_time
    async def test_a_lock_body_suppressing_the_cancellation_is_fenced_and_its_exit_raises(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """05 §5 item 25: after the deadline, service calls of the body (this service,
        another service, a task created in the body) and locks it enters raise
        `LockHoldExceeded` with nothing written; the lock is free while the body is still
        inside; leaving raises it too."""
        other = (await storage_factory()).workflows
        wf = storage.workflows
        run_id = await new_run(storage)
        thread_id = "5f0c6a4e-3f3e-4d53-9a51-6c2f3b0d7e11"
        fenced, go_on = asyncio.Event(), asyncio.Event()
        failures: list[str] = []

        async def fenced_calls() -> None:
            calls: dict[str, Callable[[], Any]] = {
                "get_run": lambda: wf.get_run(run_id),
                "update_run_state": lambda: wf.update_run_state(run_id, "n", 1),
                "other instance": lambda: other.get_run(run_id),
                "ai_storage.create_thread": lambda: storage.ai_storage.create_thread(
                    "lockhold-owner", thread_id=thread_id
                ),
                "ai_run_state.save_score": lambda: storage.ai_run_state.save_score(
                    run_id, "grader", 0.5
                ),
                "step_lock": lambda: _enter(wf.step_lock(run_id, "s", timeout=0)),
                "with_step_lock": lambda: wf.with_step_lock(run_id, "s", _one, timeout=0),
                "task created in the body": lambda: asyncio.create_task(
                    storage.workflow_runs.get_run_steps(run_id)
                ),
            }
            for label, call in calls.items():
                try:
                    await call()
                except LockHoldExceeded as exc:
                    if exc.max_hold != SHORT_HOLD or run_id not in exc.lock_name:
                        failures.append(f"{label}: {exc!r}")
                except BaseException as exc:  # reported below
                    failures.append(f"{label}: {exc!r}")
                else:
                    failures.append(f"{label}: nothing raised")

        async def body() -> None:
            async with wf.run_lock(run_id, max_hold=SHORT_HOLD):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(10)
                await fenced_calls()
                fenced.set()
                await go_on.wait()  # still inside while a contender takes the lock

        async def hold() -> LockHoldExceeded:
            with pytest.raises(LockHoldExceeded) as info:
                await body()
            return info.value

        holder = asyncio.create_task(hold())
        await asyncio.wait_for(fenced.wait(), 30)
        await _enter(other.run_lock(run_id, timeout=GRACE + 5))
        go_on.set()
        error = await holder
        assert failures == []
        assert error.__cause__ is None
        assert await wf.get_run_state(run_id) == {}
        assert await storage.agent_runs.get_thread(thread_id) is None
        assert await storage.ai_run_state.get_scores(run_id) == []
        await _enter(wf.step_lock(run_id, "s", timeout=0))

    @pytest.mark.real_time
    async def test_leaving_an_expired_lock_raises_from_what_the_body_raised(
        self, storage: Storage
    ) -> None:
        """05 §5 item 25: a body raising after the deadline leaves with
        `LockHoldExceeded` chained from that exception."""
        wf = storage.workflows
        run_id = await new_run(storage)
        boom = KeyError("boom")

        async def body() -> None:
            async with wf.step_lock(run_id, "s", max_hold=SHORT_HOLD):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(10)
                raise boom

        with pytest.raises(LockHoldExceeded) as info:
            await body()
        assert info.value.__cause__ is boom
        await _enter(wf.step_lock(run_id, "s", timeout=0))

    # --- 26 -------------------------------------------------------------------------------

    @pytest.mark.real_time
    async def test_a_lock_left_before_max_hold_and_its_next_holder_are_undisturbed(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """05 §5 item 26: leaving first disarms the deadline; a new holder of the same
        lock (another instance, then this one) is undisturbed when the old deadline passes."""
        other = (await storage_factory()).workflows
        wf = storage.workflows
        run_id = await new_run(storage)
        async with wf.run_lock(run_id, max_hold=MAX_HOLD):
            assert await wf.get_run(run_id) is not None
        async with wf.step_lock(run_id, "s", max_hold=MAX_HOLD):
            pass
        deadline = time.monotonic() + MAX_HOLD
        async with other.run_lock(run_id, timeout=0), wf.step_lock(run_id, "s", timeout=0):
            await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.1)
            assert await other.get_run(run_id) is not None
            await other.update_run_state(run_id, "n", 1)
        async with wf.run_lock(run_id, timeout=0, max_hold=60):
            await asyncio.sleep(0.05)
        assert await wf.get_run_state(run_id) == {"n": 1}

    @pytest.mark.real_time
    async def test_with_lock_returns_when_quick_and_raises_lock_hold_exceeded_when_not(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """05 §5 item 26: `with_*` return `fn`'s value within `max_hold` and raise
        `LockHoldExceeded` instead of returning past it; the lock is free afterwards."""
        other = (await storage_factory()).workflows
        wf = storage.workflows
        run_id = await new_run(storage)
        assert await wf.with_run_lock(run_id, _one, max_hold=MAX_HOLD) == 1
        assert await wf.with_step_lock(run_id, "s", _one, max_hold=MAX_HOLD) == 1
        slow = await asyncio.gather(
            wf.with_run_lock(run_id, _sleep_long, max_hold=SHORT_HOLD),
            wf.with_step_lock(run_id, "s", _sleep_long, max_hold=SHORT_HOLD),
            return_exceptions=True,
        )
        assert [type(result) for result in slow] == [LockHoldExceeded, LockHoldExceeded]
        await _enter(other.run_lock(run_id, timeout=0))
        await _enter(other.step_lock(run_id, "s", timeout=0))

    @pytest.mark.real_time
    async def test_an_outside_cancellation_of_a_lock_holder_surfaces_as_cancelled_error(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """05 §5 item 26: cancelling the holder before the deadline raises
        `CancelledError`, not `LockHoldExceeded`; so does cancelling a body that suppressed
        the deadline's cancellation (the `uncancel` bookkeeping of `asyncio.timeout`)."""
        other = (await storage_factory()).workflows
        wf = storage.workflows
        run_id = await new_run(storage)
        inside = asyncio.Event()

        async def hold(suppress: bool) -> None:
            async with wf.run_lock(
                run_id, timeout=GRACE + 5, max_hold=SHORT_HOLD if suppress else MAX_HOLD
            ):
                if suppress:
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.sleep(10)
                inside.set()
                await asyncio.Event().wait()

        for suppress in (False, True):
            inside.clear()
            holder = asyncio.create_task(hold(suppress))
            await asyncio.wait_for(inside.wait(), 30)
            holder.cancel()
            with pytest.raises(asyncio.CancelledError):
                await holder
            await _enter(other.run_lock(run_id, timeout=0))

    @pytest.mark.real_time
    async def test_the_fence_ends_with_the_body_of_the_expired_lock(self, storage: Storage) -> None:
        """05 §3.4 (3): an inner lock expiring inside an unbounded outer lock fences only
        its own body; the outer body goes on and its exit raises nothing."""
        wf = storage.workflows
        run_id = await new_run(storage)
        async with wf.run_lock(run_id, timeout=0):
            with pytest.raises(LockHoldExceeded):
                async with wf.step_lock(run_id, "s", timeout=0, max_hold=SHORT_HOLD):
                    await asyncio.sleep(10)
            assert await wf.get_run(run_id) is not None
            await _enter(wf.step_lock(run_id, "s", timeout=0))

    async def test_lock_max_hold_must_be_positive_finite_seconds(self, storage: Storage) -> None:
        """05 §5 item 26: `max_hold` `0`, `-1`, NaN, infinity or `True` is `InvalidValue`
        before any waiting, for all four lock methods; `None` is unbounded."""
        wf = storage.workflows
        run_id = await new_run(storage)
        # held, so a check made after waiting would show as a 30 s LockTimeout instead
        async with wf.run_lock(run_id, timeout=0), wf.step_lock(run_id, "s", timeout=0):
            for max_hold in (0, 0.0, -1, -0.001, math.nan, math.inf, -math.inf, True, "1"):
                bad: Any = max_hold
                await expect_invalid("run_lock", _enter_run_lock, wf, run_id, bad)
                await expect_invalid("step_lock", _enter_step_lock, wf, run_id, bad)
                await expect_invalid("with_run_lock", _with_run_lock, wf, run_id, bad)
                await expect_invalid("with_step_lock", _with_step_lock, wf, run_id, bad)
        await _enter(wf.run_lock(run_id, timeout=0, max_hold=None))
        await _enter(wf.step_lock(run_id, "s", timeout=0, max_hold=1))

    # --- 27 -------------------------------------------------------------------------------

    @requires(Capability.CROSS_PROCESS_LOCKS)
    @pytest.mark.real_time
    async def test_a_lock_held_past_max_hold_is_taken_by_another_process(
        self, storage: Storage, storage_open_args: tuple[str, dict[str, object]]
    ) -> None:
        """05 §5 item 27 ([X]): item 24 with the contender in another OS process; it
        gets the lock after the deadline and within 1 s of it."""
        url, options = storage_open_args
        wf = storage.workflows
        run_id = await new_run(storage)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CONTENDER_SCRIPT,
            json.dumps([url, options, run_id]),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdin is not None
            assert process.stdout is not None
            ready = await asyncio.wait_for(process.stdout.readline(), 60)
            if ready.strip() != b"ready":
                _, stderr = await process.communicate()
                pytest.fail(f"contender did not start: {stderr.decode(errors='replace')}")
            stdin = process.stdin
            acquired = math.nan

            async def body() -> None:
                nonlocal acquired
                async with wf.run_lock(run_id, max_hold=MAX_HOLD):
                    acquired = time.monotonic()
                    stdin.write(b"go\n")
                    await stdin.drain()
                    await asyncio.sleep(10)

            before = time.monotonic()
            with pytest.raises(LockHoldExceeded):
                await body()
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            _, stderr = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0, stderr.decode(errors="replace")
        taken = json.loads(line)
        assert isinstance(taken, float), line
        assert before + MAX_HOLD <= taken <= acquired + MAX_HOLD + GRACE, (
            taken - acquired,
            acquired - before,
        )


async def _enter_run_lock(wf: WorkflowService, run_id: str, max_hold: Any) -> None:
    await _enter(wf.run_lock(run_id, timeout=30, max_hold=max_hold))


async def _enter_step_lock(wf: WorkflowService, run_id: str, max_hold: Any) -> None:
    await _enter(wf.step_lock(run_id, "s", timeout=30, max_hold=max_hold))


async def _with_run_lock(wf: WorkflowService, run_id: str, max_hold: Any) -> None:
    await wf.with_run_lock(run_id, _one, timeout=30, max_hold=max_hold)


async def _with_step_lock(wf: WorkflowService, run_id: str, max_hold: Any) -> None:
    await wf.with_step_lock(run_id, "s", _one, timeout=30, max_hold=max_hold)
