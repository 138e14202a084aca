"""Workflow contract, step transitions, claims and retries (see docs/contract.md, 20 to 27)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import InvalidValue, StepNotFound
from pikku_storage.records import (
    StepState,
    StepStatus,
)
from pikku_testing.contract._builders_workflows import (
    T0,
    assert_invariant,
    expected_run,
    expected_step,
    history_entry,
    new_run,
    new_step,
    snapshot,
    step_mutators,
    stored_error,
    unknown_id,
)

__all__ = ["WorkflowStepTests"]


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _assert_first_attempt(
    storage: Storage, run_id: str, name: str, expected: StepState
) -> None:
    """The live step and its only history entry show `expected`; the run was not touched."""
    assert await storage.workflows.get_step_state(run_id, name) == expected
    assert await storage.workflow_runs.get_run_history(run_id) == [history_entry(expected, name)]
    assert await storage.workflows.get_run(run_id) == expected_run(run_id)


async def _apply(storage: Storage, kind: str, step_id: str, index: int) -> None:
    """One step operation by name; `index` varies the outcome written."""
    wf = storage.workflows
    if kind == "scheduled":
        await wf.set_step_scheduled(step_id)
    elif kind == "running":
        await wf.set_step_running(step_id)
    elif kind == "claim":
        await wf.claim_step(step_id)
    elif kind == "result":
        await wf.set_step_result(step_id, index)
    elif kind == "error":
        await wf.set_step_error(step_id, {"message": str(index)})
    else:
        await wf.create_retry_attempt(step_id, "running" if index % 2 else "pending")


class WorkflowStepTests:
    """docs/services/workflows.md#steps item 20 to 27: step transitions, claims, retries and the
    attempt invariant."""

    # --- 20 -------------------------------------------------------------------------------

    async def test_set_step_running_writes_status_and_running_at_to_both_copies(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 20."""
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        pikku_clock.advance(2)
        await storage.workflows.set_step_running(step.step_id)
        expected = expected_step(
            step.step_id, status=StepStatus.RUNNING, updated_at=_at(2), running_at=_at(2)
        )
        await _assert_first_attempt(storage, run_id, "s", expected)

    async def test_set_step_scheduled_writes_status_and_scheduled_at_to_both_copies(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 20."""
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        pikku_clock.advance(2)
        await storage.workflows.set_step_scheduled(step.step_id)
        expected = expected_step(
            step.step_id, status=StepStatus.SCHEDULED, updated_at=_at(2), scheduled_at=_at(2)
        )
        await _assert_first_attempt(storage, run_id, "s", expected)

    async def test_set_step_result_writes_result_clears_error_and_stamps_both_copies(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 20."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        pikku_clock.advance(1)
        await wf.set_step_error(step.step_id, {"message": "first"})
        pikku_clock.advance(1)
        await wf.set_step_result(step.step_id, {"r": [1]})
        expected = expected_step(
            step.step_id,
            status=StepStatus.SUCCEEDED,
            result={"r": [1]},
            updated_at=_at(2),
            failed_at=_at(1),
            succeeded_at=_at(2),
        )
        await _assert_first_attempt(storage, run_id, "s", expected)

    async def test_set_step_error_writes_error_clears_result_and_stamps_both_copies(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 20."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        pikku_clock.advance(1)
        await wf.set_step_result(step.step_id, "r")
        pikku_clock.advance(1)
        await wf.set_step_error(step.step_id, {"message": "bad", "code": "E"})
        expected = expected_step(
            step.step_id,
            status=StepStatus.FAILED,
            error=stored_error("bad", code="E"),
            updated_at=_at(2),
            succeeded_at=_at(1),
            failed_at=_at(2),
        )
        await _assert_first_attempt(storage, run_id, "s", expected)

    # --- 21 -------------------------------------------------------------------------------

    async def test_step_stamps_accumulate_and_a_repeat_restamps(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 21."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        for seconds, call in enumerate(
            (wf.set_step_scheduled, wf.set_step_running, wf.set_step_scheduled), start=1
        ):
            pikku_clock.set(_at(seconds))
            await call(step.step_id)
        pikku_clock.set(_at(4))
        await wf.set_step_result(step.step_id, "r")
        expected = expected_step(
            step.step_id,
            status=StepStatus.SUCCEEDED,
            result="r",
            updated_at=_at(4),
            running_at=_at(2),
            scheduled_at=_at(3),
            succeeded_at=_at(4),
        )
        await _assert_first_attempt(storage, run_id, "s", expected)

    async def test_succeeded_step_may_become_running_again(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 21."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        pikku_clock.set(_at(1))
        await wf.set_step_running(step.step_id)
        pikku_clock.set(_at(2))
        await wf.set_step_result(step.step_id, "r")
        pikku_clock.set(_at(3))
        await wf.set_step_running(step.step_id)
        expected = expected_step(
            step.step_id,
            status=StepStatus.RUNNING,
            result="r",
            updated_at=_at(3),
            running_at=_at(3),
            succeeded_at=_at(2),
        )
        await _assert_first_attempt(storage, run_id, "s", expected)

    # --- 22 -------------------------------------------------------------------------------

    async def test_step_mutators_raise_step_not_found_for_unknown_step_ids(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 22."""
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        before = await snapshot(storage, [run_id])
        for missing in (unknown_id(), step.step_id.upper(), "not-a-uuid"):
            for label, call in step_mutators(storage, missing).items():
                with pytest.raises(StepNotFound) as info:
                    await call()
                assert str(info.value) == f"Step not found: {missing}", label
        assert await snapshot(storage, [run_id]) == before

    # --- 23 -------------------------------------------------------------------------------

    async def test_claim_step_turns_a_pending_step_into_running(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 23."""
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        pikku_clock.advance(1)
        claimed = await storage.workflows.claim_step(step.step_id)
        expected = expected_step(
            step.step_id, status=StepStatus.RUNNING, updated_at=_at(1), running_at=_at(1)
        )
        assert claimed == expected
        await _assert_first_attempt(storage, run_id, "s", expected)

    async def test_claim_step_turns_a_scheduled_step_into_running(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 23."""
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        pikku_clock.advance(1)
        await storage.workflows.set_step_scheduled(step.step_id)
        pikku_clock.advance(1)
        claimed = await storage.workflows.claim_step(step.step_id)
        expected = expected_step(
            step.step_id,
            status=StepStatus.RUNNING,
            updated_at=_at(2),
            running_at=_at(2),
            scheduled_at=_at(1),
        )
        assert claimed == expected
        await _assert_first_attempt(storage, run_id, "s", expected)

    async def _assert_claim_refused(
        self, storage: Storage, clock: ManualClock, status: StepStatus
    ) -> None:
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        clock.advance(1)
        if status is StepStatus.RUNNING:
            await wf.set_step_running(step.step_id)
        elif status is StepStatus.SUCCEEDED:
            await wf.set_step_result(step.step_id, "r")
        else:
            await wf.set_step_error(step.step_id, {"message": "m"})
        before = await snapshot(storage, [run_id])
        clock.advance(1)
        assert await wf.claim_step(step.step_id) is None
        assert await snapshot(storage, [run_id]) == before

    async def test_claim_step_returns_none_when_step_already_running(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 23."""
        await self._assert_claim_refused(storage, pikku_clock, StepStatus.RUNNING)

    async def test_claim_step_returns_none_when_step_succeeded(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 23."""
        await self._assert_claim_refused(storage, pikku_clock, StepStatus.SUCCEEDED)

    async def test_claim_step_returns_none_when_step_failed(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 23."""
        await self._assert_claim_refused(storage, pikku_clock, StepStatus.FAILED)

    # --- 24 -------------------------------------------------------------------------------

    async def _failed_first_attempt(
        self, storage: Storage, clock: ManualClock
    ) -> tuple[str, StepState]:
        """A step (retries 2, delay "2s") that ran at 1 s and failed at 2 s."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await wf.insert_step_state(run_id, "s", None, {"d": 1}, retries=2, retry_delay="2s")
        clock.set(_at(1))
        await wf.set_step_running(step.step_id)
        clock.set(_at(2))
        await wf.set_step_error(step.step_id, {"message": "m"})
        first = expected_step(
            step.step_id,
            status=StepStatus.FAILED,
            error=stored_error("m"),
            retries=2,
            retry_delay="2s",
            updated_at=_at(2),
            running_at=_at(1),
            failed_at=_at(2),
        )
        return run_id, first

    async def test_create_retry_attempt_pending_starts_a_clean_second_attempt(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 24."""
        run_id, first = await self._failed_first_attempt(storage, pikku_clock)
        pikku_clock.set(_at(3))
        retried = await storage.workflows.create_retry_attempt(first.step_id, "pending")
        live = expected_step(
            first.step_id, attempt_count=2, retries=2, retry_delay="2s", updated_at=_at(3)
        )
        assert retried == live
        assert await storage.workflows.get_step_state(run_id, "s") == live
        second = expected_step(
            first.step_id, attempt_count=2, retries=2, retry_delay="2s", created_at=_at(3)
        )
        assert await storage.workflow_runs.get_run_history(run_id) == [
            history_entry(first, "s"),
            history_entry(second, "s"),
        ]
        (step,) = await storage.workflow_runs.get_run_steps(run_id)
        assert (step.rpc_name, step.data, step.created_at) == (None, {"d": 1}, T0)

    async def test_create_retry_attempt_running_stamps_running_at_on_both_copies(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 24."""
        run_id, first = await self._failed_first_attempt(storage, pikku_clock)
        pikku_clock.set(_at(3))
        retried = await storage.workflows.create_retry_attempt(first.step_id, "running")
        live = expected_step(
            first.step_id,
            status=StepStatus.RUNNING,
            attempt_count=2,
            retries=2,
            retry_delay="2s",
            updated_at=_at(3),
            running_at=_at(3),
        )
        assert retried == live
        assert await storage.workflows.get_step_state(run_id, "s") == live
        second = expected_step(
            first.step_id,
            status=StepStatus.RUNNING,
            attempt_count=2,
            retries=2,
            retry_delay="2s",
            created_at=_at(3),
            running_at=_at(3),
        )
        assert await storage.workflow_runs.get_run_history(run_id) == [
            history_entry(first, "s"),
            history_entry(second, "s"),
        ]

    # --- 25 -------------------------------------------------------------------------------

    async def test_create_retry_attempt_rejects_statuses_other_than_pending_and_running(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 25."""
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        before = await snapshot(storage, [run_id])
        for status in ("failed", StepStatus.SUCCEEDED, "scheduled", "suspended"):
            with pytest.raises(InvalidValue):
                await storage.workflows.create_retry_attempt(step.step_id, status)
        assert await snapshot(storage, [run_id]) == before

    async def test_create_retry_attempt_is_accepted_on_a_succeeded_step(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 25."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        await wf.set_step_result(step.step_id, "r")
        retried = await wf.create_retry_attempt(step.step_id, "pending")
        assert retried == expected_step(step.step_id, attempt_count=2)
        history = await wf.get_run_history(run_id)
        assert [(e.attempt_count, e.status, e.result) for e in history] == [
            (1, StepStatus.SUCCEEDED, "r"),
            (2, StepStatus.PENDING, None),
        ]

    # --- 26 -------------------------------------------------------------------------------

    async def test_retry_within_one_millisecond_keeps_attempts_in_history_order(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 26."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        await wf.set_step_error(step.step_id, {"message": "m"})
        await wf.create_retry_attempt(step.step_id, "pending")
        await wf.set_step_running(step.step_id)
        await wf.set_step_result(step.step_id, "ok")
        history = await wf.get_run_history(run_id)
        assert [(e.attempt_count, e.status, e.result, e.error) for e in history] == [
            (1, StepStatus.FAILED, None, stored_error("m")),
            (2, StepStatus.SUCCEEDED, "ok", None),
        ]
        await assert_invariant(storage, run_id)

    # --- 27 -------------------------------------------------------------------------------

    async def test_step_invariant_holds_after_every_transition_and_retry(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 27."""
        run_id = await new_run(storage)
        a = (await new_step(storage, run_id, "a", retries=3)).step_id
        b = (await new_step(storage, run_id, "b")).step_id
        operations = [
            ("scheduled", a),
            ("claim", a),
            ("error", a),
            ("retry", a),
            ("result", b),
            ("retry", b),
            ("running", a),
            ("result", a),
            ("running", b),
            ("retry", a),
            ("claim", a),
            ("error", b),
        ]
        for index, (kind, step_id) in enumerate(operations):
            if index % 3:
                pikku_clock.advance(0.5)
            await _apply(storage, kind, step_id, index)
            await assert_invariant(storage, run_id)
        steps = await storage.workflow_runs.get_run_steps(run_id)
        assert [(s.step_name, s.attempt_count) for s in steps] == [("a", 3), ("b", 2)]
