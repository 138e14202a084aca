"""Workflow contract, `WorkflowRunService` queries, deletion and retention (docs/contract.md, 41 to
48)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import RunNotFound, StepNotFound
from pikku_storage.interfaces import WorkflowRunService
from pikku_storage.records import (
    GraphState,
    StepStatus,
    WorkflowRunWire,
    WorkflowStatus,
)
from pikku_testing.contract._builders_workflows import (
    BAD_IDENTIFIERS,
    LONG_ID,
    T0,
    assert_gone,
    expect_invalid,
    expected_run,
    expected_step,
    history_entry,
    new_run,
    new_step,
    non_canonical_ids,
    run_step,
    scribble,
    snapshot,
    unknown_id,
)

__all__ = ["WorkflowConsoleTests"]

_Call = Callable[[WorkflowRunService, Any], Awaitable[object]]

# Every identifier argument of WorkflowRunService, each called with one bad value in its place.
_RUN_SERVICE_CALLS: dict[str, _Call] = {
    "get_run": lambda s, x: s.get_run(x),
    "get_run_history": lambda s, x: s.get_run_history(x),
    "get_run_steps": lambda s, x: s.get_run_steps(x),
    "delete_run": lambda s, x: s.delete_run(x),
    "get_workflow_version(name)": lambda s, x: s.get_workflow_version(x, "h"),
    "get_workflow_version(graph_hash)": lambda s, x: s.get_workflow_version("wf", x),
    "list_runs(workflow_name)": lambda s, x: s.list_runs(workflow_name=x),
}


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _finish(
    storage: Storage, run_id: str, status: str, clock: ManualClock, at: float
) -> None:
    clock.set(_at(at))
    await storage.workflows.update_run_status(run_id, status)


class WorkflowConsoleTests:
    """docs/services/workflow-runs.md item 41 to 48, plus the validation behaviours (1, 4, 5, 7) as
    they apply to
    `WorkflowRunService`; every rejected call is shown to have written or deleted nothing."""

    async def _one_finished_run(self, storage: Storage) -> str:
        run_id = await new_run(storage)
        await new_step(storage, run_id, "s")
        await storage.workflows.update_run_state(run_id, "k", 1)
        await storage.workflows.update_run_status(run_id, "completed")
        await storage.workflows.upsert_workflow_version("wf", "h", 1, "dsl")
        return run_id

    # --- 1, 4, 5, 7 for WorkflowRunService --------------------------------------------------

    async def test_workflow_run_service_identifiers_reject_bad_values_and_delete_nothing(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 1 (WorkflowRunService), with non-`str` values
        (docs/concepts.md#values)."""
        run_id = await self._one_finished_run(storage)
        before = await snapshot(storage, [run_id], [("wf", "h")])
        for label, call in _RUN_SERVICE_CALLS.items():
            for value in (*BAD_IDENTIFIERS, 123, b"id", None):
                if value is None and label.startswith("list_runs"):
                    continue  # `workflow_name=None` means no filter
                await expect_invalid(f"{label} {value!r}", call, storage.workflow_runs, value)
        assert await snapshot(storage, [run_id], [("wf", "h")]) == before

    async def test_workflow_run_service_accepts_identifiers_of_255_characters(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 1 (WorkflowRunService)."""
        runs = storage.workflow_runs
        run_id = await new_run(storage, LONG_ID)
        await storage.workflows.upsert_workflow_version(LONG_ID, LONG_ID, 1, "dsl")
        assert [run.id for run in await runs.list_runs(workflow_name=LONG_ID)] == [run_id]
        assert await runs.get_distinct_workflow_names() == [LONG_ID]
        assert await runs.get_workflow_version(LONG_ID, LONG_ID) is not None
        assert await runs.get_run(LONG_ID) is None
        assert await runs.delete_run(LONG_ID) is False

    async def test_list_runs_rejects_bad_statuses_and_accepts_value_strings(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 4 (list_runs)."""
        runs = storage.workflow_runs
        run_id = await self._one_finished_run(storage)
        for status in ("Completed", " running", "succeeded", "bogus", "", 1, True):
            await expect_invalid(f"status {status!r}", _list_with, runs, {"status": status})
        listed = await runs.list_runs(status="completed")
        assert [run.id for run in listed] == [run_id]
        assert listed[0].status is WorkflowStatus.COMPLETED
        assert await runs.list_runs(status=WorkflowStatus.RUNNING) == []

    async def test_workflow_run_service_treats_non_canonical_ids_as_unknown(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 5 (WorkflowRunService)."""
        runs = storage.workflow_runs
        run_id = await self._one_finished_run(storage)
        before = await snapshot(storage, [run_id])
        for bad in non_canonical_ids(run_id):
            assert await runs.get_run(bad) is None
            assert await runs.get_run_history(bad) == []
            assert await runs.get_run_steps(bad) == []
            assert await runs.delete_run(bad) is False
        assert await snapshot(storage, [run_id]) == before

    async def test_workflow_run_service_results_do_not_alias_the_store(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 7 (WorkflowRunService)."""
        run_id = await self._one_finished_run(storage)
        runs = storage.workflow_runs
        before = await snapshot(storage, [run_id], [("wf", "h")])
        scribble(
            [
                await runs.list_runs(),
                await runs.get_run(run_id),
                await runs.get_run_steps(run_id),
                await runs.get_run_history(run_id),
                await runs.get_distinct_workflow_names(),
                await runs.get_workflow_version("wf", "h"),
            ]
        )
        assert await snapshot(storage, [run_id], [("wf", "h")]) == before

    # --- 41 -------------------------------------------------------------------------------

    async def test_list_runs_returns_newest_first_and_50_by_default(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 41."""
        ids = []
        for index in range(56):
            if index % 2 == 0:
                pikku_clock.advance(0.001)  # pairs share one millisecond
            ids.append(await new_run(storage, input=index))
        pikku_clock.set(T0 - timedelta(hours=1))
        oldest = await new_run(storage)
        listed = await storage.workflow_runs.list_runs()
        assert [run.id for run in listed] == ids[::-1][:50]
        assert listed[0] == expected_run(ids[-1], input=55, created_at=_at(0.028))
        everything = await storage.workflow_runs.list_runs(limit=1000)
        assert [run.id for run in everything] == [*ids[::-1], oldest]

    async def test_list_runs_pages_concatenate_to_the_full_list(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 41."""
        runs = storage.workflow_runs
        for index in range(23):
            if index % 3 == 0:
                pikku_clock.advance(1)
            await new_run(storage, "wf" if index % 2 else "other")
        full = await runs.list_runs(limit=1000)
        assert len(full) == 23
        for limit in (1, 7, 1000):
            pages = []
            for offset in range(0, 24, limit):
                pages += await runs.list_runs(limit=limit, offset=offset)
            assert pages == full
        assert await runs.list_runs(offset=23) == []
        assert await runs.list_runs(limit=5, offset=1000) == []

    # --- 42 -------------------------------------------------------------------------------

    async def test_list_runs_filters_by_name_status_and_both_exactly(
        self, storage: Storage
    ) -> None:
        """docs/services/workflow-runs.md item 42."""
        runs = storage.workflow_runs
        made = {}
        for name in ("wf", "Wf", "wf ", "wf2"):
            for status in ("running", "completed"):
                run_id = await new_run(storage, name)
                if status != "running":
                    await storage.workflows.update_run_status(run_id, status)
                made[(name, status)] = run_id

        async def ids(**filters: Any) -> set[str]:
            return {run.id for run in await runs.list_runs(limit=1000, **filters)}

        assert await ids(workflow_name="wf") == {made[("wf", "running")], made[("wf", "completed")]}
        assert await ids(status="completed") == {v for k, v in made.items() if k[1] == "completed"}
        assert await ids(workflow_name="wf ", status=WorkflowStatus.COMPLETED) == {
            made[("wf ", "completed")]
        }
        assert await ids(workflow_name="w") == set()
        assert await ids(workflow_name="wf", status="failed") == set()

    async def test_list_runs_filter_sees_a_status_change_at_once(self, storage: Storage) -> None:
        """docs/services/workflow-runs.md item 42."""
        runs = storage.workflow_runs
        run_id = await new_run(storage)
        assert [r.id for r in await runs.list_runs(status="running")] == [run_id]
        await storage.workflows.update_run_status(run_id, "suspended")
        assert await runs.list_runs(status="running") == []
        assert [r.id for r in await runs.list_runs(workflow_name="wf", status="suspended")] == [
            run_id
        ]

    async def test_list_runs_rejects_bad_paging_and_name_options(self, storage: Storage) -> None:
        """docs/services/workflow-runs.md item 42."""
        runs = storage.workflow_runs
        await new_run(storage)
        options: list[dict[str, Any]] = [
            {"limit": 0},
            {"limit": 1001},
            {"limit": True},
            {"limit": -1},
            {"limit": 1.5},
            {"limit": "10"},
            {"offset": -1},
            {"offset": True},
            {"offset": 0.5},
            {"workflow_name": ""},
        ]
        for option in options:
            await expect_invalid(f"list_runs({option})", _list_with, runs, option)
        assert len(await runs.list_runs(limit=1000, offset=0)) == 1

    # --- 43 -------------------------------------------------------------------------------

    async def test_get_run_steps_lists_steps_in_creation_order_with_current_attempts(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 43."""
        wf = storage.workflows
        run_id = await new_run(storage)
        b = await new_step(storage, run_id, "b", rpc_name="rpc.b", data={"x": 1}, retries=1)
        a = await new_step(storage, run_id, "a")
        pikku_clock.advance(1)
        c = await new_step(storage, run_id, "c", data=[1])
        pikku_clock.set(T0 - timedelta(seconds=5))
        early = await new_step(storage, run_id, "early")
        pikku_clock.set(_at(2))
        await wf.set_step_error(b.step_id, {"message": "m"})
        pikku_clock.set(_at(3))
        await wf.create_retry_attempt(b.step_id, "running")
        b_now = expected_step(
            b.step_id,
            status=StepStatus.RUNNING,
            attempt_count=2,
            retries=1,
            updated_at=_at(3),
            running_at=_at(3),
        )
        assert await storage.workflow_runs.get_run_steps(run_id) == [
            run_step(early, "early"),
            run_step(b_now, "b", rpc_name="rpc.b", data={"x": 1}),
            run_step(a, "a"),
            run_step(c, "c", data=[1]),
        ]
        assert await storage.workflow_runs.get_run_steps(unknown_id()) == []

    # --- 44 -------------------------------------------------------------------------------

    async def test_get_run_history_lists_every_attempt_oldest_first(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 44."""
        wf = storage.workflows
        run_id = await new_run(storage)
        a = await new_step(storage, run_id, "a", retries=3, retry_delay=500)
        b = await new_step(storage, run_id, "b")
        await wf.set_step_error(a.step_id, {"message": "one"})
        await wf.create_retry_attempt(a.step_id, "pending")
        pikku_clock.advance(1)
        await wf.set_step_result(b.step_id, "b")
        await wf.create_retry_attempt(b.step_id, "running")
        first_a = expected_step(
            a.step_id,
            status=StepStatus.FAILED,
            error={"message": "one", "name": None, "stack": None, "code": None},
            retries=3,
            retry_delay=500,
            failed_at=T0,
        )
        second_a = expected_step(a.step_id, attempt_count=2, retries=3, retry_delay=500)
        first_b = expected_step(
            b.step_id,
            status=StepStatus.SUCCEEDED,
            result="b",
            updated_at=_at(1),
            succeeded_at=_at(1),
        )
        second_b = expected_step(
            b.step_id,
            status=StepStatus.RUNNING,
            attempt_count=2,
            created_at=_at(1),
            running_at=_at(1),
        )
        expected = [
            history_entry(first_a, "a"),
            history_entry(first_b, "b"),
            history_entry(second_a, "a"),
            history_entry(second_b, "b"),
        ]
        assert await storage.workflow_runs.get_run_history(run_id) == expected
        assert await wf.get_run_history(run_id) == expected
        assert await storage.workflow_runs.get_run_history(unknown_id()) == []
        pikku_clock.set(T0 - timedelta(seconds=5))
        early = await new_step(storage, run_id, "early")
        history = await storage.workflow_runs.get_run_history(run_id)
        assert history == [history_entry(early, "early"), *expected]

    # --- 45 -------------------------------------------------------------------------------

    async def test_get_distinct_workflow_names_lists_each_name_once_in_code_point_order(
        self, storage: Storage
    ) -> None:
        """docs/services/workflow-runs.md item 45."""
        names = ["\uff5a", "a b", "é", "B", "😀", "a ", "ä", "e\u0301", "a", "a", "B"]
        for name in names:
            await new_run(storage, name)
        expected = ["B", "a", "a ", "a b", "e\u0301", "ä", "é", "\uff5a", "😀"]
        assert await storage.workflow_runs.get_distinct_workflow_names() == expected

    async def test_get_distinct_workflow_names_is_empty_without_runs(
        self, storage: Storage
    ) -> None:
        """docs/services/workflow-runs.md item 45."""
        await storage.workflows.upsert_workflow_version("wf", "h", 1, "dsl")
        assert await storage.workflow_runs.get_distinct_workflow_names() == []

    async def test_get_distinct_workflow_names_drops_a_name_with_its_last_run(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 45."""
        runs = storage.workflow_runs
        first, second = await new_run(storage, "x"), await new_run(storage, "x")
        pruned = await new_run(storage, "y")
        await storage.workflows.update_run_status(pruned, "failed")
        await runs.delete_run(first)
        assert await runs.get_distinct_workflow_names() == ["x", "y"]
        await runs.delete_run(second)
        pikku_clock.advance(1)
        assert await runs.prune_runs(finished_before=_at(1)) == 1
        assert await runs.get_distinct_workflow_names() == []

    # --- 46 -------------------------------------------------------------------------------

    async def test_delete_run_returns_true_then_false(self, storage: Storage) -> None:
        """docs/services/workflow-runs.md item 46."""
        run_id = await self._one_finished_run(storage)
        assert await storage.workflow_runs.delete_run(run_id) is True
        assert await storage.workflow_runs.delete_run(run_id) is False

    async def test_delete_run_removes_its_steps_history_and_state(self, storage: Storage) -> None:
        """docs/services/workflow-runs.md item 46."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        await wf.set_step_result(step.step_id, 1)
        await wf.update_run_state(run_id, "k", 1)
        assert await storage.workflow_runs.delete_run(run_id) is True
        await assert_gone(storage, run_id)
        with pytest.raises(StepNotFound):
            await wf.get_step_state(run_id, "s")
        with pytest.raises(StepNotFound):
            await wf.set_step_running(step.step_id)
        with pytest.raises(StepNotFound):
            await wf.claim_step(step.step_id)
        with pytest.raises(RunNotFound):
            await wf.insert_step_state(run_id, "t", None, None)
        with pytest.raises(RunNotFound):
            await wf.update_run_state(run_id, "k", 2)
        assert await wf.get_completed_graph_state(run_id) == GraphState()
        assert await wf.get_node_results(run_id, ["s"]) == {}
        assert await wf.get_nodes_without_steps(run_id, ["s"]) == ["s"]
        await assert_gone(storage, run_id)

    async def test_delete_run_keeps_other_runs_and_child_runs(self, storage: Storage) -> None:
        """docs/services/workflow-runs.md item 46 (D16)."""
        parent = await self._one_finished_run(storage)
        child = await new_run(
            storage, "child", wire=WorkflowRunWire(type="rpc", parent_run_id=parent)
        )
        await new_step(storage, child, "s")
        other = await new_run(storage)
        before = await snapshot(storage, [child, other])
        assert await storage.workflow_runs.delete_run(parent) is True
        assert (await snapshot(storage, [child, other]))[2:] == before[2:]
        listed = await storage.workflow_runs.list_runs()
        assert [run.id for run in listed] == [other, child]

    async def test_delete_run_of_unknown_ids_returns_false(self, storage: Storage) -> None:
        """docs/services/workflow-runs.md item 46."""
        run_id = await self._one_finished_run(storage)
        before = await snapshot(storage, [run_id])
        for bad in (unknown_id(), *non_canonical_ids(run_id)):
            assert await storage.workflow_runs.delete_run(bad) is False
        assert await snapshot(storage, [run_id]) == before

    # --- 47 -------------------------------------------------------------------------------

    async def test_prune_runs_deletes_finished_runs_updated_before_the_cutoff(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 47."""
        runs = storage.workflow_runs
        doomed = []
        for at, status in ((1, "completed"), (2, "failed"), (3, "cancelled")):
            run_id = await new_run(storage)
            await new_step(storage, run_id, "s")
            await storage.workflows.update_run_state(run_id, "k", 1)
            await _finish(storage, run_id, status, pikku_clock, at)
            doomed.append(run_id)
        kept = []
        for at, status in ((10, "completed"), (11, "failed"), (1, "running"), (1, "suspended")):
            run_id = await new_run(storage)
            await _finish(storage, run_id, status, pikku_clock, at)
            kept.append(run_id)
        touched = await new_run(storage)
        await _finish(storage, touched, "completed", pikku_clock, 1)
        pikku_clock.set(_at(12))
        await storage.workflows.update_run_state(touched, "k", 1)  # updated_at moves to 12 s
        kept.append(touched)
        assert await runs.prune_runs(finished_before=_at(10)) == 3
        assert sorted(run.id for run in await runs.list_runs()) == sorted(kept)
        for run_id in doomed:
            await assert_gone(storage, run_id)

    async def test_prune_runs_with_a_batch_size_below_the_count_deletes_them_all(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 47."""
        for index in range(7):
            await _finish(storage, await new_run(storage), "completed", pikku_clock, index)
        latest = await new_run(storage)
        await _finish(storage, latest, "completed", pikku_clock, 100)
        assert await storage.workflow_runs.prune_runs(finished_before=_at(50), batch_size=2) == 7
        assert [run.id for run in await storage.workflow_runs.list_runs()] == [latest]

    async def test_prune_runs_with_custom_statuses_deletes_only_those(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 47."""
        made = {}
        for status in ("running", "suspended", "completed", "failed"):
            made[status] = await new_run(storage)
            await _finish(storage, made[status], status, pikku_clock, 1)
        pikku_clock.set(_at(5))
        statuses = ["running", WorkflowStatus.SUSPENDED, "running"]
        assert (
            await storage.workflow_runs.prune_runs(finished_before=_at(5), statuses=statuses) == 2
        )
        remaining = {run.id for run in await storage.workflow_runs.list_runs()}
        assert remaining == {made["completed"], made["failed"]}

    async def test_prune_runs_returns_zero_when_nothing_matches(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 47."""
        runs = storage.workflow_runs
        assert await runs.prune_runs(finished_before=_at(100)) == 0
        run_id = await new_run(storage)
        await _finish(storage, run_id, "completed", pikku_clock, 5)
        assert await runs.prune_runs(finished_before=_at(5)) == 0
        assert [run.id for run in await runs.list_runs()] == [run_id]

    # --- 48 -------------------------------------------------------------------------------

    async def test_prune_runs_rejects_bad_arguments_and_deletes_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflow-runs.md item 48 (and 4 for `prune_runs`)."""
        run_id = await self._one_finished_run(storage)
        pikku_clock.advance(10)
        before = await snapshot(storage, [run_id], [("wf", "h")])
        cutoff = _at(100)
        bad_calls: list[dict[str, Any]] = [
            {"finished_before": datetime(2030, 1, 1)},
            {"finished_before": "2030-01-01T00:00:00Z"},
            {"finished_before": 1_900_000_000},
            {"finished_before": cutoff, "statuses": []},
            {"finished_before": cutoff, "statuses": "completed"},
            {"finished_before": cutoff, "statuses": ["Completed"]},
            {"finished_before": cutoff, "statuses": [" running"]},
            {"finished_before": cutoff, "statuses": ["succeeded"]},
            {"finished_before": cutoff, "statuses": ["completed", "bogus"]},
            {"finished_before": cutoff, "statuses": [1]},
            {"finished_before": cutoff, "statuses": None},
            {"finished_before": cutoff, "batch_size": 0},
            {"finished_before": cutoff, "batch_size": 10001},
            {"finished_before": cutoff, "batch_size": True},
            {"finished_before": cutoff, "batch_size": 1.5},
        ]
        for options in bad_calls:
            await expect_invalid(f"prune_runs({options})", _prune_with, storage, options)
        assert await snapshot(storage, [run_id], [("wf", "h")]) == before
        assert await storage.workflow_runs.prune_runs(finished_before=cutoff, batch_size=10000) == 1


async def _list_with(runs: WorkflowRunService, options: dict[str, Any]) -> object:
    return await runs.list_runs(**options)


async def _prune_with(storage: Storage, options: dict[str, Any]) -> object:
    return await storage.workflow_runs.prune_runs(**options)
