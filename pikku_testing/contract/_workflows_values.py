"""Workflow contract, values, statuses, ids, clocks and copies (see docs/contract.md, 3 to 7)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.codec import JsonValue
from pikku_storage.errors import RunNotFound, StepNotFound
from pikku_storage.records import (
    GraphState,
    StepStatus,
    WorkflowRunWire,
    WorkflowStatus,
)
from pikku_testing.contract._builders_workflows import (
    ROUND_TRIP_VALUES,
    expect_invalid,
    json_identical,
    new_run,
    new_step,
    non_canonical_ids,
    scribble,
    snapshot,
    step_mutators,
    stored_error,
)

__all__ = ["WorkflowValueTests"]


class _Ids(NamedTuple):
    run_id: str
    step_id: str


_Call = Callable[[Storage, _Ids, Any], Awaitable[object]]


async def _enter(lock: AbstractAsyncContextManager[None]) -> None:
    async with lock:
        pass


async def _nothing() -> None:
    return None


class WorkflowValueTests:
    """docs/concepts.md#values item 3 to 7 on `WorkflowService`: exact round trips, statuses,
    non-canonical
    ids, timestamps and copies."""

    # --- 3 --------------------------------------------------------------------------------

    async def test_run_input_round_trips_exactly(self, storage: Storage) -> None:
        """docs/concepts.md#values item 3."""
        for value in ROUND_TRIP_VALUES:
            run = await storage.workflows.get_run(await new_run(storage, input=value))
            assert run is not None
            assert json_identical(run.input, value), value

    async def test_run_output_round_trips_exactly(self, storage: Storage) -> None:
        """docs/concepts.md#values item 3."""
        run_id = await new_run(storage)
        for value in ROUND_TRIP_VALUES:
            await storage.workflows.update_run_status(run_id, "completed", output=value)
            run = await storage.workflow_runs.get_run(run_id)
            assert run is not None
            assert json_identical(run.output, value), value

    async def test_step_data_round_trips_exactly(self, storage: Storage) -> None:
        """docs/concepts.md#values item 3."""
        run_id = await new_run(storage)
        for index, value in enumerate(ROUND_TRIP_VALUES):
            await new_step(storage, run_id, f"s{index}", data=value)
        steps = await storage.workflow_runs.get_run_steps(run_id)
        assert len(steps) == len(ROUND_TRIP_VALUES)
        for step, value in zip(steps, ROUND_TRIP_VALUES, strict=True):
            assert json_identical(step.data, value), value

    async def test_step_result_round_trips_exactly(self, storage: Storage) -> None:
        """docs/concepts.md#values item 3."""
        wf = storage.workflows
        run_id = await new_run(storage)
        names = [f"s{index}" for index in range(len(ROUND_TRIP_VALUES))]
        for name, value in zip(names, ROUND_TRIP_VALUES, strict=True):
            step = await new_step(storage, run_id, name)
            await wf.set_step_result(step.step_id, value)
            assert json_identical((await wf.get_step_state(run_id, name)).result, value), value
        results = await wf.get_node_results(run_id, names)
        history = await storage.workflow_runs.get_run_history(run_id)
        for name, value in zip(names, ROUND_TRIP_VALUES, strict=True):
            assert json_identical(results[name], value), value
            (entry,) = [entry for entry in history if entry.step_name == name]
            assert json_identical(entry.result, value), value

    async def test_run_state_values_round_trip_exactly(self, storage: Storage) -> None:
        """docs/concepts.md#values item 3."""
        run_id = await new_run(storage)
        for index, value in enumerate(ROUND_TRIP_VALUES):
            await storage.workflows.update_run_state(run_id, f"k{index}", value)
        state = await storage.workflows.get_run_state(run_id)
        expected = {f"k{index}": value for index, value in enumerate(ROUND_TRIP_VALUES)}
        assert json_identical(state, expected)

    async def test_version_graph_round_trips_exactly(self, storage: Storage) -> None:
        """docs/concepts.md#values item 3."""
        for index, value in enumerate(ROUND_TRIP_VALUES):
            await storage.workflows.upsert_workflow_version("wf", f"h{index}", value, "dsl")
            version = await storage.workflow_runs.get_workflow_version("wf", f"h{index}")
            assert version is not None
            assert json_identical(version.graph, value), value

    async def test_workflow_error_extras_round_trip_exactly(self, storage: Storage) -> None:
        """docs/concepts.md#values item 3."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id)
        for value in ROUND_TRIP_VALUES:
            await wf.update_run_status(run_id, "failed", error={"message": "m", "extra": value})
            await wf.set_step_error(step.step_id, {"message": "m", "extra": value})
            run = await wf.get_run(run_id)
            assert run is not None
            assert json_identical(run.error, stored_error("m", extra=value)), value
            state = await wf.get_step_state(run_id, "step")
            assert json_identical(state.error, stored_error("m", extra=value)), value

    # --- 4 --------------------------------------------------------------------------------

    async def test_update_run_status_rejects_bad_statuses_and_accepts_value_strings(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 4."""
        wf = storage.workflows
        run_id = await new_run(storage)
        before = await snapshot(storage, [run_id])
        for status in ("Completed", " running", "running ", "succeeded", "bogus", "", 1, None):
            await expect_invalid(f"status {status!r}", wf.update_run_status, run_id, status)
        assert await snapshot(storage, [run_id]) == before
        for value in ("suspended", "completed", WorkflowStatus.FAILED, "cancelled", "running"):
            await wf.update_run_status(run_id, value)
            run = await wf.get_run(run_id)
            assert run is not None
            assert run.status is WorkflowStatus(value)

    async def test_create_retry_attempt_rejects_bad_statuses_and_accepts_value_strings(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 4."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id)
        before = await snapshot(storage, [run_id])
        for status in ("Pending", " running", "completed", "bogus", "", 1, None):
            await expect_invalid(
                f"status {status!r}", wf.create_retry_attempt, step.step_id, status
            )
        assert await snapshot(storage, [run_id]) == before
        retried = await wf.create_retry_attempt(step.step_id, "running")
        assert retried.status is StepStatus.RUNNING
        assert (await wf.get_step_state(run_id, "step")).status is StepStatus.RUNNING
        history = await storage.workflow_runs.get_run_history(run_id)
        assert all(type(entry.status) is StepStatus for entry in history)

    # --- 5 --------------------------------------------------------------------------------

    async def _succeeded_run(self, storage: Storage) -> _Ids:
        run_id = await new_run(storage)
        await storage.workflows.update_run_state(run_id, "k", 1)
        step = await new_step(storage, run_id, "a")
        await storage.workflows.set_step_result(step.step_id, 1)
        return _Ids(run_id, step.step_id)

    async def test_non_canonical_run_ids_read_as_unknown(self, storage: Storage) -> None:
        """docs/concepts.md#values item 5."""
        wf = storage.workflows
        ids = await self._succeeded_run(storage)
        for bad in non_canonical_ids(ids.run_id):
            assert await wf.get_run(bad) is None
            assert await wf.get_run_history(bad) == []
            assert await wf.get_run_state(bad) == {}
            assert await wf.get_completed_graph_state(bad) == GraphState()
            assert await wf.get_nodes_without_steps(bad, ["a", "b", "a"]) == ["a", "b", "a"]
            assert await wf.get_node_results(bad, ["a"]) == {}
            with pytest.raises(StepNotFound):
                await wf.get_step_state(bad, "a")

    async def test_non_canonical_run_ids_are_unknown_to_run_mutators(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 5."""
        wf = storage.workflows
        ids = await self._succeeded_run(storage)
        before = await snapshot(storage, [ids.run_id])
        for bad in non_canonical_ids(ids.run_id):
            with pytest.raises(RunNotFound):
                await wf.update_run_status(bad, "completed")
            with pytest.raises(RunNotFound):
                await wf.update_run_state(bad, "k", 2)
            with pytest.raises(RunNotFound):
                await wf.insert_step_state(bad, "b", None, None)
        assert await snapshot(storage, [ids.run_id]) == before

    async def test_non_canonical_step_ids_are_unknown_to_step_mutators(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 5."""
        ids = await self._succeeded_run(storage)
        before = await snapshot(storage, [ids.run_id])
        for bad in non_canonical_ids(ids.step_id):
            for label, call in step_mutators(storage, bad).items():
                with pytest.raises(StepNotFound):
                    await call()
                assert label
        assert await snapshot(storage, [ids.run_id]) == before

    async def test_locks_work_on_non_canonical_run_ids(self, storage: Storage) -> None:
        """docs/concepts.md#values item 5 (locks never check the run, D13)."""
        wf = storage.workflows
        ids = await self._succeeded_run(storage)
        for bad in non_canonical_ids(ids.run_id):
            async with wf.run_lock(bad, timeout=0), wf.step_lock(bad, "a", timeout=0):
                pass
            assert await wf.with_run_lock(bad, _one, timeout=0) == 1

    # --- 6 --------------------------------------------------------------------------------

    async def test_timestamps_are_utc_whole_milliseconds_from_the_service_clock(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#values item 6."""
        wf = storage.workflows
        plus_five = timezone(timedelta(hours=5))
        pikku_clock.set(datetime(2001, 2, 3, 9, 5, 6, 789999, tzinfo=plus_five))
        t1 = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
        run_id = await new_run(storage)
        step = await new_step(storage, run_id)
        pikku_clock.advance(0.0015)
        t2 = datetime(2001, 2, 3, 4, 5, 6, 791000, tzinfo=UTC)
        await wf.update_run_status(run_id, "suspended")
        await wf.set_step_running(step.step_id)
        run = await wf.get_run(run_id)
        assert run is not None
        state = await wf.get_step_state(run_id, "step")
        (entry,) = await wf.get_run_history(run_id)
        stamps = [
            run.created_at,
            run.updated_at,
            state.created_at,
            state.updated_at,
            state.running_at,
            entry.created_at,
            entry.updated_at,
            entry.running_at,
        ]
        assert stamps == [t1, t2, t1, t2, t2, t1, t2, t2]
        for stamp in stamps:
            assert stamp is not None
            assert stamp.utcoffset() == timedelta(0)
            assert stamp.microsecond % 1000 == 0

    # --- 7 --------------------------------------------------------------------------------

    async def test_mutating_workflow_arguments_after_a_call_changes_nothing_stored(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 7."""
        wf = storage.workflows
        payload: dict[str, JsonValue] = {"list": [1, 2], "obj": {"a": 1}}
        wire = WorkflowRunWire(type="http", id="req")
        run_id = await wf.create_run("wf", payload, wire=wire)
        await wf.update_run_status(run_id, "suspended", output=payload, error={"message": "m"})
        await wf.update_run_state(run_id, "k", payload)
        step = await wf.insert_step_state(run_id, "s", None, payload)
        await wf.set_step_result(step.step_id, payload)
        await wf.upsert_workflow_version("wf", "h", payload, "dsl")
        before = await snapshot(storage, [run_id], [("wf", "h")])
        payload["list"] = "changed"
        payload["new"] = True
        wire.id = "changed"
        assert await snapshot(storage, [run_id], [("wf", "h")]) == before

    async def test_mutating_returned_workflow_records_changes_nothing_stored(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 7."""
        wf = storage.workflows
        payload: dict[str, JsonValue] = {"list": [1, 2], "obj": {"a": 1}}
        run_id = await wf.create_run("wf", payload, wire=WorkflowRunWire(type="http"))
        await wf.update_run_state(run_id, "k", payload)
        step = await wf.insert_step_state(run_id, "s", None, payload)
        await wf.set_step_error(step.step_id, {"message": "m", "x": [1]})
        await wf.create_retry_attempt(step.step_id, "running")
        await wf.set_step_result(step.step_id, payload)
        await wf.upsert_workflow_version("wf", "h", payload, "dsl")
        keys = ([run_id], [("wf", "h")])
        before = await snapshot(storage, *keys)
        graph_before = await wf.get_completed_graph_state(run_id)
        scribble(await snapshot(storage, *keys))
        scribble(
            [
                await wf.get_run_state(run_id),
                await wf.get_step_state(run_id, "s"),
                await wf.get_node_results(run_id, ["s"]),
                await wf.get_nodes_without_steps(run_id, ["x"]),
                await wf.get_completed_graph_state(run_id),
            ]
        )
        assert await snapshot(storage, *keys) == before
        assert await wf.get_completed_graph_state(run_id) == graph_before


async def _one() -> int:
    return 1
