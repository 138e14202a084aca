"""Workflow contract, runs, run state and step insertion (see docs/contract.md, 9 to 19)."""

from __future__ import annotations

import traceback
from datetime import timedelta
from typing import Any

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.codec import JsonValue
from pikku_storage.errors import ConflictError, NotFoundError, RunNotFound, StepNotFound
from pikku_storage.interfaces import WorkflowService
from pikku_storage.records import (
    GraphState,
    StepStatus,
    WorkflowRunWire,
    WorkflowStatus,
)
from pikku_testing.contract._builders_workflows import (
    T0,
    expect_invalid,
    expected_run,
    expected_step,
    history_entry,
    is_uuid4,
    json_identical,
    new_run,
    new_step,
    run_step,
    snapshot,
    stored_error,
    unknown_id,
)

__all__ = ["WorkflowRunTests"]

_SPECIAL_STEP_NAMES = ("node:a", "a:step:b", "x#2", "with space", 'quote"s', "名前")


class _CodedError(Exception):
    def __init__(self, message: str, code: object) -> None:
        super().__init__(message)
        self.code = code


class WorkflowRunTests:
    """docs/services/workflows.md#runs item 9 to 19: runs, the state bag, inserting and reading
    steps."""

    # --- 9 --------------------------------------------------------------------------------

    async def test_workflow_create_run_returns_a_canonical_uuid4(self, storage: Storage) -> None:
        """docs/services/workflows.md#runs item 9."""
        assert is_uuid4(await new_run(storage))

    async def test_workflow_create_run_gives_identical_calls_distinct_ids(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#runs item 9."""
        ids = [await new_run(storage, input={"same": 1}) for _ in range(3)]
        assert len(set(ids)) == 3
        listed = await storage.workflow_runs.list_runs()
        assert sorted(run.id for run in listed) == sorted(ids)

    # --- 10 -------------------------------------------------------------------------------

    async def test_workflow_new_run_reads_running_with_defaults(self, storage: Storage) -> None:
        """docs/services/workflows.md#runs item 10."""
        run_id = await storage.workflows.create_run("wf", {"in": [1]})
        assert await storage.workflows.get_run(run_id) == expected_run(run_id, input={"in": [1]})
        assert await storage.workflows.get_run_state(run_id) == {}

    async def test_workflow_run_inline_graph_hash_and_wire_round_trip(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#runs item 10."""
        parent = await new_run(storage)
        wire = WorkflowRunWire(type="http", id="req-1", parent_run_id=parent)
        run_id = await new_run(storage, inline=True, graph_hash="sha:1", wire=wire)
        assert await storage.workflow_runs.get_run(run_id) == expected_run(
            run_id, inline=True, graph_hash="sha:1", wire=wire
        )
        queued = await new_run(storage, wire=WorkflowRunWire(type="queue"))
        assert await storage.workflow_runs.get_run(queued) == expected_run(
            queued, wire=WorkflowRunWire(type="queue")
        )

    # --- 11 -------------------------------------------------------------------------------

    async def test_workflow_update_run_status_sets_status_output_error_and_updated_at(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#runs item 11."""
        wf = storage.workflows
        run_id = await new_run(storage, input=1)
        pikku_clock.advance(5)
        await wf.update_run_status(run_id, "failed", output={"o": 1}, error={"message": "m"})
        assert await wf.get_run(run_id) == expected_run(
            run_id,
            input=1,
            status=WorkflowStatus.FAILED,
            output={"o": 1},
            error=stored_error("m"),
            updated_at=T0 + timedelta(seconds=5),
        )

    async def test_workflow_completed_run_may_become_running_again(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#runs item 11."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await wf.update_run_status(run_id, WorkflowStatus.COMPLETED, output=1)
        pikku_clock.advance(1)
        await wf.update_run_status(run_id, WorkflowStatus.RUNNING)
        assert await wf.get_run(run_id) == expected_run(
            run_id, updated_at=T0 + timedelta(seconds=1)
        )

    async def test_workflow_falsy_outputs_read_back_exactly(self, storage: Storage) -> None:
        """docs/services/workflows.md#runs item 11."""
        wf = storage.workflows
        run_id = await new_run(storage)
        falsy: tuple[JsonValue, ...] = (0, False, "", [], {}, 0.0)
        for output in falsy:
            await wf.update_run_status(run_id, "completed", output=output)
            run = await wf.get_run(run_id)
            assert run is not None
            assert json_identical(run.output, output), output

    # --- 12 -------------------------------------------------------------------------------

    async def test_workflow_update_run_status_without_output_or_error_clears_them(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#runs item 12."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await wf.update_run_status(run_id, "suspended", output=1, error={"message": "waiting"})
        await wf.update_run_status(run_id, "completed")
        assert await wf.get_run(run_id) == expected_run(run_id, status=WorkflowStatus.COMPLETED)

    # --- 13 -------------------------------------------------------------------------------

    async def test_workflow_error_from_a_raised_exception_stores_its_traceback(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#runs item 13."""
        run_id = await new_run(storage)
        try:
            raise ValueError("boom")
        except ValueError as exc:
            error = exc
        await storage.workflows.update_run_status(run_id, "failed", error=error)
        stack = "".join(traceback.format_exception(error))
        assert "raise ValueError" in stack
        assert await storage.workflows.get_run(run_id) == expected_run(
            run_id,
            status=WorkflowStatus.FAILED,
            error=stored_error("boom", name="ValueError", stack=stack),
        )

    async def test_workflow_error_from_an_exception_keeps_or_stringifies_its_code(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#runs item 13 (D10)."""
        wf = storage.workflows
        run_id = await new_run(storage)
        cases: list[tuple[BaseException, str | int | None]] = [
            (KeyError("never raised"), None),
            (_CodedError("int", 42), 42),
            (_CodedError("str", "E_BAD"), "E_BAD"),
            (_CodedError("float", 1.5), "1.5"),
            (_CodedError("bool", True), "True"),
            (_CodedError("none", None), None),
        ]
        for exc, code in cases:
            await wf.update_run_status(run_id, "failed", error=exc)
            run = await wf.get_run(run_id)
            assert run is not None
            assert run.error == stored_error(
                str(exc),
                name=type(exc).__name__,
                stack="".join(traceback.format_exception(exc)),
                code=code,
            )
            assert json_identical(run.error["code"] if run.error else None, code)

    async def test_workflow_error_from_a_mapping_keeps_four_keys_and_extras(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#runs item 13."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id)
        full: dict[str, JsonValue] = {
            "message": "m",
            "name": "N",
            "stack": None,
            "code": 7,
            "detail": {"x": [1]},
        }
        await wf.update_run_status(run_id, "failed", error=full)
        await wf.set_step_error(step.step_id, {"message": "only"})
        run = await wf.get_run(run_id)
        assert run is not None
        assert run.error == stored_error("m", name="N", code=7, detail={"x": [1]})
        state = await wf.get_step_state(run_id, "step")
        assert state.error == stored_error("only")

    async def test_workflow_error_mapping_without_a_str_message_is_rejected(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#runs item 13."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id)
        before = await snapshot(storage, [run_id])
        bad_errors: list[object] = [
            {},
            {"message": 1},
            {"message": None},
            {"message": "m", "name": 1},
            {"message": "m", "stack": ["s"]},
            {"message": "m", "code": 1.5},
            {"message": "m", "code": True},
            "a string",
            42,
        ]
        for error in bad_errors:
            await expect_invalid(f"run error {error!r}", _fail_run, wf, run_id, error)
            await expect_invalid(f"step error {error!r}", wf.set_step_error, step.step_id, error)
        assert await snapshot(storage, [run_id]) == before

    # --- 14 -------------------------------------------------------------------------------

    async def test_workflow_run_mutators_raise_run_not_found_and_create_nothing(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#runs item 14."""
        wf = storage.workflows
        missing = unknown_id()
        with pytest.raises(RunNotFound) as info:
            await wf.update_run_status(missing, "completed", output=1)
        assert str(info.value) == f"Run not found: {missing}"
        with pytest.raises(RunNotFound):
            await wf.update_run_state(missing, "k", 1)
        assert await snapshot(storage, [missing]) == [[], [], None, {}, [], []]

    # --- 15 -------------------------------------------------------------------------------

    async def test_workflow_run_state_keys_round_trip_and_writes_keep_other_keys(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#runs item 15."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await wf.update_run_state(run_id, "a", 1)
        await wf.update_run_state(run_id, "b", {"x": [1]})
        await wf.update_run_state(run_id, "a", 2)
        await wf.update_run_state(run_id, "none", None)
        assert await wf.get_run_state(run_id) == {"a": 2, "b": {"x": [1]}, "none": None}

    async def test_workflow_run_state_names_stay_flat(self, storage: Storage) -> None:
        """docs/services/workflows.md#runs item 15."""
        wf = storage.workflows
        run_id = await new_run(storage)
        names = [".", "a.b", '"q"', "'s'", "x[0]", "$", "$.a", "a/b", "名前.ü", "a.b.c"]
        for index, name in enumerate(names):
            await wf.update_run_state(run_id, name, index)
        await wf.update_run_state(run_id, "a", {"b": 5})
        expected = {name: index for index, name in enumerate(names)} | {"a": {"b": 5}}
        assert await wf.get_run_state(run_id) == expected

    async def test_workflow_update_run_state_moves_the_run_updated_at(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#runs item 15."""
        run_id = await new_run(storage)
        pikku_clock.advance(3)
        await storage.workflows.update_run_state(run_id, "k", 1)
        assert await storage.workflows.get_run(run_id) == expected_run(
            run_id, updated_at=T0 + timedelta(seconds=3)
        )

    async def test_workflow_run_state_of_an_unknown_run_is_empty(self, storage: Storage) -> None:
        """docs/services/workflows.md#runs item 15."""
        await storage.workflows.update_run_state(await new_run(storage), "k", 1)
        assert await storage.workflows.get_run_state(unknown_id()) == {}

    # --- 16 -------------------------------------------------------------------------------

    async def test_insert_step_state_returns_a_pending_first_attempt(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 16."""
        wf = storage.workflows
        run_id = await new_run(storage)
        # rpc_name None: StepState carries it since spec 05, checked in _workflows_additions
        state = await wf.insert_step_state(run_id, "s", None, {"d": 1}, retries=2)
        assert is_uuid4(state.step_id)
        expected = expected_step(state.step_id, retries=2)
        assert state == expected
        assert await wf.get_step_state(run_id, "s") == expected
        assert await wf.get_run_history(run_id) == [history_entry(expected, "s")]
        assert await storage.workflow_runs.get_run_steps(run_id) == [
            run_step(expected, "s", data={"d": 1})
        ]

    async def test_insert_step_state_keeps_retries_and_retry_delay_types(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 16."""
        wf = storage.workflows
        run_id = await new_run(storage)
        cases: list[tuple[int | None, int | str | None]] = [
            (0, 0),
            (3, 1000),
            (None, "1000"),
            (1, "2s"),
            (None, None),
        ]
        for index, (retries, delay) in enumerate(cases):
            state = await new_step(storage, run_id, f"s{index}", retries=retries, retry_delay=delay)
            read = await wf.get_step_state(run_id, f"s{index}")
            for record in (state, read):
                assert record == expected_step(state.step_id, retries=retries, retry_delay=delay)
                assert json_identical(record.retries, retries)
                assert json_identical(record.retry_delay, delay)
        history = await wf.get_run_history(run_id)
        steps = await storage.workflow_runs.get_run_steps(run_id)
        for records in (history, steps):
            assert [(r.retries, r.retry_delay) for r in records] == cases
            assert all(
                json_identical(r.retry_delay, delay)
                for r, (_, delay) in zip(records, cases, strict=True)
            )

    # --- 17 -------------------------------------------------------------------------------

    async def test_insert_step_state_into_an_unknown_run_raises_and_creates_nothing(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 17."""
        missing = unknown_id()
        with pytest.raises(RunNotFound):
            await new_step(storage, missing, "s")
        assert await snapshot(storage, [missing]) == [[], [], None, {}, [], []]
        with pytest.raises(StepNotFound):
            await storage.workflows.get_step_state(missing, "s")

    async def test_insert_step_state_duplicate_name_raises_conflict_and_changes_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#steps item 17."""
        run_id = await new_run(storage)
        await new_step(storage, run_id, "s", data=1, retries=1)
        before = await snapshot(storage, [run_id])
        pikku_clock.advance(1)
        with pytest.raises(ConflictError):
            await new_step(storage, run_id, "s", data=2, retries=5)
        assert await snapshot(storage, [run_id]) == before

    async def test_same_step_name_in_two_runs_names_independent_steps(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 17."""
        wf = storage.workflows
        first, second = await new_run(storage), await new_run(storage)
        one = await new_step(storage, first, "s")
        two = await new_step(storage, second, "s")
        assert one.step_id != two.step_id
        await wf.set_step_result(one.step_id, "done")
        assert await wf.get_step_state(second, "s") == two
        assert (await wf.get_step_state(first, "s")).status is StepStatus.SUCCEEDED

    # --- 18 -------------------------------------------------------------------------------

    async def test_get_step_state_raises_step_not_found_for_a_missing_step_or_run(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 18."""
        run_id = await new_run(storage)
        await new_step(storage, run_id, "present")
        missing_run = unknown_id()
        for owner in (run_id, missing_run):
            with pytest.raises(StepNotFound) as info:
                await storage.workflows.get_step_state(owner, "absent")
            assert isinstance(info.value, NotFoundError)
            assert isinstance(info.value, LookupError)
            assert str(info.value) == f"Step not found: run={owner}, step=absent"

    # --- 19 -------------------------------------------------------------------------------

    async def test_step_names_with_separators_quotes_and_unicode_work_everywhere(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#steps item 19."""
        wf = storage.workflows
        run_id = await new_run(storage)
        names = list(_SPECIAL_STEP_NAMES)
        for name in names:
            state = await new_step(storage, run_id, name, data=name)
            assert await wf.get_step_state(run_id, name) == state
            await wf.set_step_result(state.step_id, name)
            await wf.set_branch_taken(state.step_id, f"branch {name}")
            async with wf.step_lock(run_id, name, timeout=0):
                pass
        assert await wf.get_completed_graph_state(run_id) == GraphState(
            completed_node_ids=sorted(names),
            branch_keys={name: f"branch {name}" for name in names},
        )
        assert await wf.get_nodes_without_steps(run_id, [*names, "node", "a"]) == ["node", "a"]
        assert await wf.get_node_results(run_id, names) == {name: name for name in names}
        steps = await storage.workflow_runs.get_run_steps(run_id)
        assert [(s.step_name, s.data, s.result) for s in steps] == [(n, n, n) for n in names]
        history = await storage.workflow_runs.get_run_history(run_id)
        assert [entry.step_name for entry in history] == names


async def _fail_run(wf: WorkflowService, run_id: str, error: Any) -> None:
    await wf.update_run_status(run_id, "failed", error=error)
