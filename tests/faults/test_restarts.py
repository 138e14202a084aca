"""Servers restarted under a stream of writes from one open `Storage`; locks across restarts.

Each test runs on a private server of this module (tests/faults/conftest.py): a PostgreSQL
cluster stopped `fast` (sessions get admin_shutdown) or `immediate` (a crash, WAL replay on
start), a `redis-server --save '' --appendonly no` restarted with `SHUTDOWN SAVE`, or one with
an append-only file killed with SIGKILL. Checked: (a) during the outage callers see only
`StorageUnavailable`, (b) the same `Storage` works again once the server is back, without being
reopened, (c) nothing is half-written: every run and message batch is whole, and deleting
everything through the API leaves no orphan row or key. Figures are printed (`-s`).
Spec: 00 §6, 01 §3.8, 01 §6 item 61; issue 17 items 3 and 4.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import pytest

from pikku_storage import Storage, StorageUnavailable
from tests.faults._targets import Target
from tests.faults._workload import Writers, check_consistent, delete_everything

pytestmark = [pytest.mark.faults, pytest.mark.real_time]

WRITERS: Final = 4
ROUNDS_BEFORE: Final = 6  # whole rounds per writer before the server goes down
ROUNDS_AFTER: Final = 3  # whole rounds per writer after it is back


@asynccontextmanager
async def _storage(target: Target, **options: Any) -> AsyncIterator[Storage]:
    namespace = f"faults_{secrets.token_hex(4)}"
    async with target.open(namespace, **options) as storage:
        try:
            yield storage
        finally:
            await delete_everything(storage)


async def _down(target: Target) -> float:
    await asyncio.to_thread(target.stop)
    return time.monotonic()


async def _up(target: Target) -> float:
    await asyncio.to_thread(target.start)
    return time.monotonic()


def _report(target: Target, **figures: object) -> None:
    print(f"\n[faults] {target.name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


async def test_a_restart_under_writes_is_storage_unavailable_then_the_same_storage_recovers(
    target: Target,
) -> None:
    """(a) only `StorageUnavailable` while the server is down, (b) the same `Storage` works
    after it is back, (c) every run and batch whole, no orphan after deleting everything."""
    async with _storage(target) as storage:
        writers = Writers(storage, WRITERS)
        await writers.start()
        started = time.monotonic()
        await writers.wait("successes", started, ROUNDS_BEFORE)
        before = writers.outcomes()
        stopping = time.monotonic()
        down = await _down(target)
        await writers.wait("failures", stopping)  # every writer saw the outage
        up = await _up(target)
        await writers.wait("successes", up, ROUNDS_AFTER)
        await writers.stop()
        seen = writers.outcomes()
        held = await check_consistent(storage)
        await delete_everything(storage)
        left = await target.leftovers(storage)
        _report(
            target,
            outage_s=f"{up - stopping:.2f}",
            stop_s=f"{down - stopping:.2f}",
            callers_failing_s=f"{writers.failing(stopping):.2f}",
            caller_saw={k: v - before.get(k, 0) for k, v in seen.items()},
            recovery_s=f"{writers.recovery(up):.2f}",
            store_held=held,
            left_after_delete=len(left),
        )
        assert set(seen) == {"ok", "StorageUnavailable"}
        assert left == {}


async def test_a_lock_held_across_a_restart_is_released_and_at_once_taken_by_another(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """01 §3.8: after a restart the release reaches the server (Redis: compare-and-delete
    retried on a fresh connection, issue 17 item 4; PostgreSQL: the session's end freed it),
    and another worker's `timeout=0` acquisition succeeds on its first call."""
    namespace = f"faults_{secrets.token_hex(4)}"
    async with target.open(namespace) as holder, target.open(namespace) as other:
        run_id = await holder.workflows.create_run("flow", None)
        await other.workflows.get_run(run_id)  # the other worker has a pooled connection too
        caplog.set_level(logging.WARNING, logger="pikku_storage")
        async with holder.workflows.run_lock(run_id, timeout=0):
            with pytest.raises(TimeoutError):
                async with other.workflows.run_lock(run_id, timeout=0):
                    pass
            down = await _down(target)
            up = await _up(target)
        released = time.monotonic()
        async with other.workflows.run_lock(run_id, timeout=0):
            taken = time.monotonic()
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        _report(
            target,
            outage_s=f"{up - down:.2f}",
            release_to_taken_s=f"{taken - released:.3f}",
            warnings=len(warnings),
        )
        if target.name == "redis-shutdown":  # the key survived the restart: released by us
            assert not [w for w in warnings if "lock" in w], warnings
        await holder.workflow_runs.delete_run(run_id)


async def test_lock_calls_after_a_restart_do_not_fail_once_per_pooled_connection(
    target: Target,
) -> None:
    """Issue 17 item 3: with every pooled connection stale after a restart, the first lock
    call sweeps and retries instead of failing once per connection (10 with the default
    pool); data calls fail at most once."""
    async with _storage(target) as storage:
        wf = storage.workflows
        run_id = await wf.create_run("flow", None)

        async def hold(seconds: float) -> None:
            async with wf.step_lock(run_id, secrets.token_hex(4), timeout=5):
                await asyncio.sleep(seconds)

        await asyncio.gather(*(hold(0.05) for _ in range(6)))  # six connections in the pool
        await _down(target)
        await _up(target)
        lock_failures = await _failures_until_success(lambda: hold(0))
        data_failures = await _failures_until_success(lambda: wf.get_run(run_id))
        _report(target, lock_failures=lock_failures, data_failures_after=data_failures)
        assert lock_failures == 0
        assert data_failures <= 1


async def _failures_until_success(call: Callable[[], Awaitable[object]]) -> int:
    for failures in range(20):
        try:
            await call()
            return failures
        except StorageUnavailable:
            continue
    pytest.fail("never succeeded after the restart")
