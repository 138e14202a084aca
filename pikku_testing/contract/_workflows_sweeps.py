"""Workflow contract, sweeper queries (05 §3.5; 05 §5, 28 to 32 and the black-box half of 34)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.records import StalledRun, StepStatus, UndispatchedStep, WorkflowStatus
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_workflows import (
    T0,
    expect_invalid,
    new_run,
    new_step,
)

__all__ = ["WorkflowSweepTests"]

MS = timedelta(milliseconds=1)
FAR = T0 + timedelta(days=1)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _stalled(storage: Storage, older_than: datetime = FAR) -> list[str]:
    return [s.run_id for s in await storage.workflows.find_stalled_runs(older_than=older_than)]


async def _undispatched(storage: Storage, older_than: datetime = FAR) -> list[str]:
    found = await storage.workflows.find_undispatched_steps(older_than=older_than)
    return [s.step_id for s in found]


class WorkflowSweepTests:
    """05 §5 items 28 to 32 and the black-box half of 34."""

    # --- 28 -------------------------------------------------------------------------------

    async def test_a_run_whose_only_step_settled_is_stalled_after_that_instant(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 28."""
        wf = storage.workflows
        run_id = await new_run(storage, "wf-a")
        step = await new_step(storage, run_id, "s")
        await wf.claim_step(step.step_id)
        pikku_clock.set(_at(5))
        await wf.set_step_result(step.step_id, 1)
        expected = StalledRun(run_id=run_id, workflow="wf-a", idle_since=_at(5))
        assert await wf.find_stalled_runs(older_than=_at(5) + MS) == [expected]
        assert await wf.find_stalled_runs(older_than=_at(5)) == []

    async def test_a_run_without_steps_is_stalled_once_old(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 28."""
        run_id = await new_run(storage)
        assert await _stalled(storage, T0) == []
        assert await _stalled(storage, T0 + MS) == [run_id]

    # --- 29 -------------------------------------------------------------------------------

    @pytest.mark.parametrize("status", ["running", "scheduled"])
    async def test_a_step_in_flight_keeps_its_run_off(self, storage: Storage, status: str) -> None:
        """05 §5 item 29."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        if status == "running":
            await wf.set_step_running(step.step_id)
        else:
            await wf.set_step_scheduled(step.step_id)
        assert await _stalled(storage) == []
        await wf.set_step_result(step.step_id, None)
        assert await _stalled(storage) == [run_id]

    @pytest.mark.parametrize("status", ["suspended", "completed", "failed", "cancelled"])
    async def test_a_run_not_running_is_not_stalled(self, storage: Storage, status: str) -> None:
        """05 §5 item 29."""
        run_id = await new_run(storage)
        await storage.workflows.update_run_status(run_id, status)
        assert await _stalled(storage) == []
        await storage.workflows.update_run_status(run_id, WorkflowStatus.RUNNING)
        assert await _stalled(storage) == [run_id]

    @pytest.mark.parametrize("write", ["branch", "child", "state", "result"])
    async def test_activity_at_or_after_the_cutoff_keeps_a_run_off(
        self, storage: Storage, pikku_clock: ManualClock, write: str
    ) -> None:
        """05 §5 item 29."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        await wf.set_step_result(step.step_id, None)
        assert await _stalled(storage, _at(10)) == [run_id]
        pikku_clock.set(_at(10))
        if write == "branch":
            await wf.set_branch_taken(step.step_id, "left")
        elif write == "child":
            await wf.set_step_child_run_id(step.step_id, "c")
        elif write == "state":
            await wf.update_run_state(run_id, "k", 1)
        else:
            await wf.set_step_result(step.step_id, 2)
        assert await _stalled(storage, _at(10)) == []
        found = await wf.find_stalled_runs(older_than=_at(10) + MS)
        assert [(s.run_id, s.idle_since) for s in found] == [(run_id, _at(10))]

    async def test_a_claimed_step_unstalls_its_run_until_it_settles(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 29."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s", rpc_name="rpc.fn")
        await wf.set_step_error(step.step_id, {"message": "m"})
        assert await _stalled(storage) == [run_id]
        pikku_clock.set(_at(3))
        assert await wf.claim_step_for_execution(run_id, "s", "rpc.fn") is not None
        assert await _stalled(storage) == []
        pikku_clock.set(_at(7))
        await wf.set_step_result(step.step_id, 1)
        found = await wf.find_stalled_runs(older_than=FAR)
        assert [(s.run_id, s.idle_since) for s in found] == [(run_id, _at(7))]

    # --- 30 -------------------------------------------------------------------------------

    async def test_stalled_order_limit_and_after_paging(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 30."""
        wf = storage.workflows
        made: list[tuple[datetime, str]] = []
        for index in range(5):
            pikku_clock.set(_at(index // 2))  # pairs share idle_since: the run id breaks ties
            made.append((_at(index // 2), await new_run(storage, f"wf{index}")))
        made.sort()
        found = await wf.find_stalled_runs(older_than=FAR)
        assert [(s.idle_since, s.run_id) for s in found] == made
        assert [s.run_id for s in await wf.find_stalled_runs(older_than=FAR, limit=2)] == [
            run_id for _at_, run_id in made[:2]
        ]
        paged: list[str] = []
        after: StalledRun | None = None
        while True:
            page = await wf.find_stalled_runs(older_than=FAR, limit=2, after=after)
            if not page:
                break
            assert len(page) <= 2
            paged += [s.run_id for s in page]
            after = page[-1]
        assert paged == [run_id for _at_, run_id in made]
        gone = StalledRun(run_id="zzz", workflow="x", idle_since=made[2][0])
        rest = await wf.find_stalled_runs(older_than=FAR, after=gone)
        assert [s.run_id for s in rest] == [r for at, r in made if (at, r) > (made[2][0], "zzz")]

    # --- 31 -------------------------------------------------------------------------------

    async def test_a_pending_step_of_a_running_run_is_undispatched(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 31."""
        wf = storage.workflows
        run_id = await new_run(storage)
        pikku_clock.set(_at(2))
        step = await new_step(storage, run_id, "s", rpc_name="rpc.fn")
        expected = UndispatchedStep(
            run_id=run_id,
            step_id=step.step_id,
            step_name="s",
            rpc_name="rpc.fn",
            pending_since=_at(2),
        )
        assert await wf.find_undispatched_steps(older_than=_at(2) + MS) == [expected]
        assert await wf.find_undispatched_steps(older_than=_at(2)) == []
        for status in ["completed", "suspended"]:
            await wf.update_run_status(run_id, status)
            assert await _undispatched(storage) == []
        await wf.update_run_status(run_id, "running")
        assert await wf.find_undispatched_steps(older_than=FAR) == [expected]
        await wf.claim_step(step.step_id)
        assert await _undispatched(storage) == []

    async def test_a_pending_retry_renews_pending_since(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 31."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        await wf.set_step_error(step.step_id, {"message": "m"})
        assert await _undispatched(storage) == []
        pikku_clock.set(_at(4))
        await wf.create_retry_attempt(step.step_id, "pending")
        found = await wf.find_undispatched_steps(older_than=FAR)
        assert [(s.step_id, s.pending_since) for s in found] == [(step.step_id, _at(4))]
        await wf.create_retry_attempt(step.step_id, "running")
        assert await _undispatched(storage) == []

    async def test_a_deleted_run_leaves_no_sweeper_entries(self, storage: Storage) -> None:
        """05 §4: delete_run removes the run's entries."""
        run_id = await new_run(storage)
        await new_step(storage, run_id, "s")
        other = await new_run(storage)
        assert await storage.workflow_runs.delete_run(run_id)
        assert await _undispatched(storage) == []
        assert await _stalled(storage) == [other]

    # --- 32 -------------------------------------------------------------------------------

    async def test_undispatched_order_and_after_paging(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 32."""
        wf = storage.workflows
        runs = [await new_run(storage), await new_run(storage)]
        made: list[tuple[datetime, str]] = []
        for index in range(5):
            pikku_clock.set(_at(3 - index // 2))
            step = await new_step(storage, runs[index % 2], f"s{index}")
            made.append((_at(3 - index // 2), step.step_id))
        made.sort()
        found = await wf.find_undispatched_steps(older_than=FAR)
        assert [(s.pending_since, s.step_id) for s in found] == made
        paged: list[str] = []
        after: UndispatchedStep | None = None
        while page := await wf.find_undispatched_steps(older_than=FAR, limit=2, after=after):
            assert len(page) <= 2
            paged += [s.step_id for s in page]
            after = page[-1]
        assert paged == [step_id for _at_, step_id in made]

    @pytest.mark.parametrize("method", ["find_stalled_runs", "find_undispatched_steps"])
    async def test_sweeper_arguments_are_validated(self, storage: Storage, method: str) -> None:
        """05 §5 item 32."""
        call = getattr(storage.workflows, method)
        wrong_after = (
            UndispatchedStep(
                run_id="r", step_id="s", step_name="n", rpc_name=None, pending_since=T0
            )
            if method == "find_stalled_runs"
            else StalledRun(run_id="r", workflow="w", idle_since=T0)
        )
        cases: list[tuple[str, dict[str, object]]] = [
            ("naive", {"older_than": datetime(2026, 1, 1)}),
            ("not a datetime", {"older_than": "2026-01-01"}),
            ("limit 0", {"older_than": FAR, "limit": 0}),
            ("limit 1001", {"older_than": FAR, "limit": 1001}),
            ("limit True", {"older_than": FAR, "limit": True}),
            ("limit float", {"older_than": FAR, "limit": 2.0}),
            ("wrong after", {"older_than": FAR, "after": wrong_after}),
            ("after dict", {"older_than": FAR, "after": {"run_id": "r"}}),
        ]
        for label, kwargs in cases:
            await expect_invalid(label, lambda kwargs=kwargs: call(**kwargs))
        assert await call(older_than=FAR, limit=1000) == []
        assert await call(older_than=FAR, limit=1) == []

    # --- 34 (black-box half) --------------------------------------------------------------

    async def test_stalled_runs_agree_with_the_predicate_after_concurrent_transitions(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 34: two instances, 20 concurrent transitions, claims and retries."""
        other = await storage_factory()
        instances = [storage, other]
        runs = [await new_run(storage) for _ in range(3)]
        steps = [
            await new_step(storage, runs[index % 3], f"p{index}", rpc_name="rpc.fn")
            for index in range(6)
        ]

        async def act(index: int) -> None:
            wf = instances[index % 2].workflows
            step = steps[index % len(steps)]
            run_id = runs[(index % len(steps)) % 3]
            kind = index % 5
            if kind == 0:
                await wf.claim_step_for_execution(run_id, step_name_of(index), "rpc.fn")
            elif kind == 1:
                await wf.set_step_result(step.step_id, index)
            elif kind == 2:
                await wf.set_step_error(step.step_id, {"message": str(index)})
            elif kind == 3:
                await wf.create_retry_attempt(step.step_id, "running" if index % 2 else "pending")
            else:
                await wf.claim_step(step.step_id)

        def step_name_of(index: int) -> str:
            return f"p{index % len(steps)}"

        for round_ in range(3):
            pikku_clock.set(_at(round_ + 1))
            await asyncio.gather(*(act(index + round_) for index in range(20)))
            expected: list[tuple[datetime, str]] = []
            for run_id in runs:
                run = await storage.workflows.get_run(run_id)
                assert run is not None
                run_steps = await storage.workflow_runs.get_run_steps(run_id)
                in_flight = {StepStatus.RUNNING, StepStatus.SCHEDULED, StepStatus.SUSPENDED}
                if any(s.status in in_flight for s in run_steps):
                    continue
                idle = max([run.updated_at, *(s.updated_at for s in run_steps)])
                expected.append((idle, run_id))
            expected.sort()
            for instance in instances:
                found = await instance.workflows.find_stalled_runs(older_than=FAR)
                assert [(s.idle_since, s.run_id) for s in found] == expected
            pending: list[tuple[datetime, str]] = []
            for run_id in runs:
                for s in await storage.workflow_runs.get_run_steps(run_id):
                    if s.status is StepStatus.PENDING:
                        pending.append((s.updated_at, s.step_id))
            pending.sort()
            found_steps = await other.workflows.find_undispatched_steps(older_than=FAR)
            assert [(s.pending_since, s.step_id) for s in found_steps] == pending
