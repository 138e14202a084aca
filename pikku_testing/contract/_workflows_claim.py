"""Workflow contract, claiming a step for execution (05 §3.3; 05 §5, 20 to 23)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import ConflictError, StepFunctionMismatch, StepNotFound
from pikku_storage.records import StepState, StepStatus
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_workflows import (
    T0,
    assert_invariant,
    expect_invalid,
    expected_step,
    history_entry,
    new_run,
    new_step,
    snapshot,
    stored_error,
    unknown_id,
)

__all__ = ["WorkflowClaimTests"]


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _failed(storage: Storage, run_id: str, name: str, attempts: int, rpc: str) -> StepState:
    """A step whose attempt `attempts` failed (each attempt claimed, then failed)."""
    wf = storage.workflows
    step = await new_step(storage, run_id, name, rpc_name=rpc)
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            await wf.create_retry_attempt(step.step_id, "running")
        await wf.set_step_error(step.step_id, {"message": f"m{attempt}"})
    return await wf.get_step_state(run_id, name)


class WorkflowClaimTests:
    """05 §5 items 20 to 23."""

    # --- 20 -------------------------------------------------------------------------------

    @pytest.mark.parametrize("start", ["pending", "scheduled"])
    async def test_pending_and_scheduled_become_running(
        self, storage: Storage, pikku_clock: ManualClock, start: str
    ) -> None:
        """05 §5 item 20."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s", rpc_name="rpc.fn")
        if start == "scheduled":
            pikku_clock.set(_at(1))
            await wf.set_step_scheduled(step.step_id)
        pikku_clock.set(_at(2))
        claimed = await wf.claim_step_for_execution(run_id, "s", "rpc.fn")
        expected = expected_step(
            step.step_id,
            status=StepStatus.RUNNING,
            updated_at=_at(2),
            running_at=_at(2),
            scheduled_at=_at(1) if start == "scheduled" else None,
            rpc_name="rpc.fn",
        )
        assert claimed == expected
        assert await wf.get_step_state(run_id, "s") == expected
        assert await wf.get_run_history(run_id) == [history_entry(expected, "s")]
        await assert_invariant(storage, run_id)

    async def test_a_failed_step_gets_its_next_attempt_running(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 20."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s", rpc_name="rpc.fn", retries=1)
        await wf.set_step_child_run_id(step.step_id, "child")
        pikku_clock.set(_at(1))
        await wf.set_step_error(step.step_id, {"message": "boom"})
        first = await wf.get_step_state(run_id, "s")
        pikku_clock.set(_at(2))
        claimed = await wf.claim_step_for_execution(run_id, "s", "rpc.fn")
        second = expected_step(
            step.step_id,
            status=StepStatus.RUNNING,
            attempt_count=2,
            retries=1,
            updated_at=_at(2),
            running_at=_at(2),
            rpc_name="rpc.fn",
        )
        assert claimed == second
        assert await wf.get_step_state(run_id, "s") == second
        history = await wf.get_run_history(run_id)
        second_entry = history_entry(second, "s")
        second_entry.created_at = _at(2)
        assert history == [history_entry(first, "s"), second_entry]
        assert history[0].status is StepStatus.FAILED
        assert history[0].error == stored_error("boom")
        assert history[0].child_run_id == "child"
        await assert_invariant(storage, run_id)

    # --- 21 -------------------------------------------------------------------------------

    async def test_running_and_succeeded_give_none_and_change_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 21."""
        wf = storage.workflows
        run_id = await new_run(storage)
        running = await new_step(storage, run_id, "r", rpc_name="rpc.fn")
        done = await new_step(storage, run_id, "d", rpc_name="rpc.fn")
        await wf.set_step_running(running.step_id)
        await wf.set_step_result(done.step_id, 1)
        before = await snapshot(storage, [run_id])
        pikku_clock.advance(5)
        assert await wf.claim_step_for_execution(run_id, "r", "rpc.fn") is None
        assert await wf.claim_step_for_execution(run_id, "d", "rpc.fn") is None
        assert await snapshot(storage, [run_id]) == before

    async def test_max_attempts_bounds_a_failed_step(self, storage: Storage) -> None:
        """05 §5 item 21."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await _failed(storage, run_id, "at3", 3, "rpc.fn")
        await _failed(storage, run_id, "at2", 2, "rpc.fn")
        before = await snapshot(storage, [run_id])
        assert await wf.claim_step_for_execution(run_id, "at3", "rpc.fn", max_attempts=3) is None
        assert await snapshot(storage, [run_id]) == before
        claimed = await wf.claim_step_for_execution(run_id, "at2", "rpc.fn", max_attempts=3)
        assert claimed is not None
        assert (claimed.status, claimed.attempt_count) == (StepStatus.RUNNING, 3)
        again = await wf.claim_step_for_execution(run_id, "at3", "rpc.fn")
        assert again is not None
        assert again.attempt_count == 4  # D5: no budget without max_attempts
        await assert_invariant(storage, run_id)

    @pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3"])
    async def test_bad_max_attempts_is_invalid(self, storage: Storage, bad: object) -> None:
        """05 §5 item 21."""
        run_id = await new_run(storage)
        await new_step(storage, run_id, "s")
        before = await snapshot(storage, [run_id])
        await expect_invalid(
            repr(bad),
            lambda: storage.workflows.claim_step_for_execution(
                run_id,
                "s",
                None,
                max_attempts=bad,  # type: ignore[arg-type]
            ),
        )
        assert await snapshot(storage, [run_id]) == before

    async def test_arguments_are_checked_before_the_run(self, storage: Storage) -> None:
        """05 §3.3 order: arguments (InvalidValue) before an unknown run (StepNotFound)."""
        wf = storage.workflows
        await expect_invalid("step_name", wf.claim_step_for_execution, unknown_id(), "", None)
        await expect_invalid("rpc_name", wf.claim_step_for_execution, unknown_id(), "s", "")
        await expect_invalid("run_id", wf.claim_step_for_execution, "", "s", None)

    # --- 22 -------------------------------------------------------------------------------

    @pytest.mark.parametrize("status", ["pending", "failed", "succeeded"])
    async def test_another_function_raises_mismatch_and_changes_nothing(
        self, storage: Storage, status: str
    ) -> None:
        """05 §5 item 22."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s", rpc_name="rpc.fn")
        if status == "failed":
            await wf.set_step_error(step.step_id, {"message": "m"})
        elif status == "succeeded":
            await wf.set_step_result(step.step_id, 1)
        before = await snapshot(storage, [run_id])
        with pytest.raises(StepFunctionMismatch) as raised:
            await wf.claim_step_for_execution(run_id, "s", "rpc.other")
        assert not isinstance(raised.value, ConflictError)
        assert (raised.value.run_id, raised.value.step_name) == (run_id, "s")
        assert "rpc.fn" not in str(raised.value)
        assert "rpc.other" not in str(raised.value)
        assert await snapshot(storage, [run_id]) == before

    async def test_none_matches_only_none(self, storage: Storage) -> None:
        """05 §5 item 22."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await new_step(storage, run_id, "none")
        await new_step(storage, run_id, "x", rpc_name="x")
        with pytest.raises(StepFunctionMismatch):
            await wf.claim_step_for_execution(run_id, "none", "x")
        with pytest.raises(StepFunctionMismatch):
            await wf.claim_step_for_execution(run_id, "x", None)
        claimed = await wf.claim_step_for_execution(run_id, "none", None)
        assert claimed is not None
        assert claimed.status is StepStatus.RUNNING

    async def test_unknown_run_step_or_non_canonical_id_is_step_not_found(
        self, storage: Storage
    ) -> None:
        """05 §5 item 22."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await new_step(storage, run_id, "s")
        before = await snapshot(storage, [run_id])
        for rid, name in [(unknown_id(), "s"), (run_id, "other"), (run_id.upper(), "s")]:
            with pytest.raises(StepNotFound) as raised:
                await wf.claim_step_for_execution(rid, name, None)
            assert (raised.value.run_id, raised.value.step_name) == (rid, name)
        assert await snapshot(storage, [run_id]) == before

    # --- 23 -------------------------------------------------------------------------------

    async def test_racing_claims_of_a_failed_step_create_one_attempt(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """05 §5 item 23."""
        other = await storage_factory()
        run_id = await new_run(storage)
        await _failed(storage, run_id, "s", 1, "rpc.fn")
        results = await asyncio.gather(
            *(
                s.workflows.claim_step_for_execution(run_id, "s", "rpc.fn")
                for s in [storage, other] * 5
            )
        )
        won = [r for r in results if r is not None]
        assert len(won) == 1
        assert won[0].attempt_count == 2
        assert len(await storage.workflows.get_run_history(run_id)) == 2
        await assert_invariant(storage, run_id)

    async def test_racing_claims_of_a_pending_step_give_one(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """05 §5 item 23."""
        other = await storage_factory()
        run_id = await new_run(storage)
        await new_step(storage, run_id, "s")
        results = await asyncio.gather(
            *(s.workflows.claim_step_for_execution(run_id, "s", None) for s in [storage, other] * 5)
        )
        assert sum(r is not None for r in results) == 1
        assert len(await storage.workflows.get_run_history(run_id)) == 1

    async def test_claim_step_racing_claim_for_execution_gives_one(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """05 §5 item 23."""
        other = await storage_factory()
        for _ in range(5):
            run_id = await new_run(storage)
            step = await new_step(storage, run_id, "s")
            results = await asyncio.gather(
                storage.workflows.claim_step(step.step_id),
                other.workflows.claim_step_for_execution(run_id, "s", None),
                other.workflows.claim_step(step.step_id),
                storage.workflows.claim_step_for_execution(run_id, "s", None),
            )
            assert sum(r is not None for r in results) == 1
