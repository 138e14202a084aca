"""Workflow contract, spec 05 records: run plan and determinism, wire fields, step provenance,
child runs, step instances and version status (05 §5, 16 to 19 and 35)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import NotFoundError, StepNotFound, WorkflowVersionNotFound
from pikku_storage.records import (
    PlannedStep,
    StepInstance,
    StepStatus,
    WorkflowRunWire,
    WorkflowStatus,
    WorkflowVersion,
    WorkflowVersionStatus,
)
from pikku_testing.contract._builders_workflows import (
    T0,
    assert_invariant,
    expect_invalid,
    expected_run,
    new_run,
    new_step,
    snapshot,
    unknown_id,
)

__all__ = ["WorkflowAdditionTests"]


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


PLAN = [
    PlannedStep(step_name="a"),
    PlannedStep(step_name="b", display_name=""),
    PlannedStep(step_name="c", display_name="Step C"),
    PlannedStep(step_name="a", display_name="again"),
]


class WorkflowAdditionTests:
    """05 §5 items 16 to 19 and 35."""

    # --- 16 -------------------------------------------------------------------------------

    async def test_deterministic_and_planned_steps_round_trip(self, storage: Storage) -> None:
        """05 §5 item 16."""
        wf = storage.workflows
        run_id = await wf.create_run("wf", None, deterministic=True, planned_steps=PLAN)
        expected = expected_run(run_id, deterministic=True, planned_steps=PLAN)
        assert await wf.get_run(run_id) == expected
        assert await storage.workflow_runs.list_runs() == [expected]
        plain = await wf.create_run("wf", None, planned_steps=tuple(PLAN[:1]))
        assert await wf.get_run(plain) == expected_run(plain, planned_steps=PLAN[:1])

    async def test_run_defaults_are_not_deterministic_and_an_empty_plan(
        self, storage: Storage
    ) -> None:
        """05 §5 item 16."""
        run_id = await new_run(storage)
        run = await storage.workflows.get_run(run_id)
        assert run is not None
        assert (run.deterministic, run.planned_steps) == (False, [])

    @pytest.mark.parametrize(
        ("label", "kwargs"),
        [
            ("deterministic=1", {"deterministic": 1}),
            ("planned_steps bare str", {"planned_steps": "a"}),
            ("planned_steps dict element", {"planned_steps": [{"step_name": "a"}]}),
            ("planned_steps dict", {"planned_steps": {"step_name": "a"}}),
            ("empty step name", {"planned_steps": [PlannedStep(step_name="")]}),
            ("NUL display", {"planned_steps": [PlannedStep(step_name="a", display_name="\x00")]}),
        ],
    )
    async def test_bad_deterministic_or_plan_is_invalid_and_stores_nothing(
        self, storage: Storage, label: str, kwargs: dict[str, object]
    ) -> None:
        """05 §5 item 16."""
        before = await snapshot(storage)
        await expect_invalid(label, lambda: storage.workflows.create_run("wf", None, **kwargs))  # type: ignore[arg-type]
        assert await snapshot(storage) == before

    # --- 17 -------------------------------------------------------------------------------

    async def test_wire_parent_step_and_user_round_trip(self, storage: Storage) -> None:
        """05 §5 item 17."""
        wire = WorkflowRunWire(
            type="rpc", id="w1", parent_run_id="p", parent_step_id="ps", pikku_user_id="u1"
        )
        run_id = await new_run(storage, wire=wire)
        assert await storage.workflows.get_run(run_id) == expected_run(run_id, wire=wire)
        (listed,) = await storage.workflow_runs.list_runs()
        assert listed.wire == wire
        other = await new_run(storage, wire=WorkflowRunWire(type="rpc"))
        run = await storage.workflows.get_run(other)
        assert run is not None
        assert (run.wire.parent_step_id, run.wire.pikku_user_id) == (None, None)

    @pytest.mark.parametrize("field", ["parent_step_id", "pikku_user_id"])
    async def test_empty_wire_field_is_invalid(self, storage: Storage, field: str) -> None:
        """05 §5 item 17."""
        wire = WorkflowRunWire(type="rpc", **{field: ""})
        before = await snapshot(storage)
        await expect_invalid(field, lambda: new_run(storage, wire=wire))
        assert await snapshot(storage) == before

    # --- 18 -------------------------------------------------------------------------------

    @pytest.mark.parametrize("rpc_name", ["rpc.fn", None])
    async def test_rpc_and_from_step_name_on_every_view_through_retries_and_claims(
        self, storage: Storage, pikku_clock: ManualClock, rpc_name: str | None
    ) -> None:
        """05 §5 item 18."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s", rpc_name=rpc_name, from_step_name="prev")
        root = await new_step(storage, run_id, "root", rpc_name=rpc_name)
        assert (step.rpc_name, step.from_step_name) == (rpc_name, "prev")
        pikku_clock.advance(1)
        await wf.claim_step(step.step_id)
        await wf.set_step_error(step.step_id, {"message": "m"})
        await wf.create_retry_attempt(step.step_id, "pending")
        await wf.set_step_error(step.step_id, {"message": "m"})
        await wf.claim_step_for_execution(run_id, "s", rpc_name)
        state = await wf.get_step_state(run_id, "s")
        assert (state.rpc_name, state.from_step_name, state.attempt_count) == (rpc_name, "prev", 3)
        provenance = {
            (s.step_name, s.rpc_name, s.from_step_name)
            for s in await storage.workflow_runs.get_run_steps(run_id)
        }
        assert provenance == {("s", rpc_name, "prev"), ("root", rpc_name, None)}
        history = await storage.workflow_runs.get_run_history(run_id)
        assert len(history) == 4
        for entry in history:
            expected_from = "prev" if entry.step_id == step.step_id else None
            assert (entry.rpc_name, entry.from_step_name) == (rpc_name, expected_from)
        assert (await wf.get_step_state(run_id, "root")).from_step_name is None
        assert root.from_step_name is None

    async def test_bad_from_step_name_is_invalid(self, storage: Storage) -> None:
        """05 §5 item 18 (identifiers, 05 §1)."""
        run_id = await new_run(storage)
        before = await snapshot(storage, [run_id])
        for bad in ["", 5, "x" * 256]:
            await expect_invalid(
                repr(bad),
                lambda bad=bad: storage.workflows.insert_step_state(
                    run_id, "s", None, None, from_step_name=bad
                ),
            )
        assert await snapshot(storage, [run_id]) == before

    # --- 19 -------------------------------------------------------------------------------

    async def test_set_step_child_run_id_sets_live_step_and_current_entry(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 19."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        pikku_clock.set(_at(2))
        await wf.set_step_child_run_id(step.step_id, "child-1")
        state = await wf.get_step_state(run_id, "s")
        assert (state.child_run_id, state.updated_at) == ("child-1", _at(2))
        (entry,) = await wf.get_run_history(run_id)
        assert (entry.child_run_id, entry.updated_at) == ("child-1", _at(2))
        (listed,) = await storage.workflow_runs.get_run_steps(run_id)
        assert listed.child_run_id == "child-1"
        assert await wf.get_run(run_id) == expected_run(run_id)  # the run's updated_at stays
        pikku_clock.set(_at(3))
        await wf.set_step_child_run_id(step.step_id, "child-2")
        assert (await wf.get_step_state(run_id, "s")).child_run_id == "child-2"
        await assert_invariant(storage, run_id)

    async def test_a_retry_starts_without_a_child_and_attempt_one_keeps_its_own(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 19."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s", rpc_name="rpc.fn")
        await wf.set_step_child_run_id(step.step_id, "child-1")
        await wf.set_step_error(step.step_id, {"message": "m"})
        pikku_clock.advance(1)
        retried = await wf.create_retry_attempt(step.step_id, "running")
        assert retried.child_run_id is None
        await wf.set_step_child_run_id(step.step_id, "child-2")
        await wf.set_step_error(step.step_id, {"message": "m"})
        pikku_clock.advance(1)
        claimed = await wf.claim_step_for_execution(run_id, "s", "rpc.fn")
        assert claimed is not None
        assert claimed.child_run_id is None
        children = [e.child_run_id for e in await wf.get_run_history(run_id)]
        assert children == ["child-1", "child-2", None]
        await assert_invariant(storage, run_id)

    async def test_set_step_child_run_id_on_any_status(self, storage: Storage) -> None:
        """05 §5 item 19: unconditional."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        await wf.set_step_result(step.step_id, 1)
        await wf.set_step_child_run_id(step.step_id, "c")
        state = await wf.get_step_state(run_id, "s")
        assert (state.status, state.child_run_id) == (StepStatus.SUCCEEDED, "c")

    async def test_set_step_child_run_id_unknown_step_and_bad_child(self, storage: Storage) -> None:
        """05 §5 item 19."""
        wf = storage.workflows
        with pytest.raises(StepNotFound):
            await wf.set_step_child_run_id(unknown_id(), "c")
        with pytest.raises(StepNotFound):
            await wf.set_step_child_run_id("not-a-uuid", "c")
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        before = await snapshot(storage, [run_id])
        for bad in ["", None, 3]:
            await expect_invalid(
                repr(bad),
                lambda bad=bad: wf.set_step_child_run_id(step.step_id, bad),
            )
        assert await snapshot(storage, [run_id]) == before

    async def test_get_step_instances_lists_steps_in_creation_order(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """05 §5 item 19."""
        wf = storage.workflows
        run_id = await new_run(storage)
        first = await new_step(storage, run_id, "b")
        second = await new_step(storage, run_id, "a", from_step_name="b")
        pikku_clock.advance(1)
        third = await new_step(storage, run_id, "c#1", from_step_name="a")
        await wf.set_step_result(second.step_id, None)
        assert await wf.get_step_instances(run_id) == [
            StepInstance(
                step_id=first.step_id, step_name="b", status=StepStatus.PENDING, from_step_name=None
            ),
            StepInstance(
                step_id=second.step_id,
                step_name="a",
                status=StepStatus.SUCCEEDED,
                from_step_name="b",
            ),
            StepInstance(
                step_id=third.step_id,
                step_name="c#1",
                status=StepStatus.PENDING,
                from_step_name="a",
            ),
        ]
        assert await wf.get_step_instances(unknown_id()) == []
        assert await wf.get_step_instances("not-a-uuid") == []

    # --- 35 -------------------------------------------------------------------------------

    async def test_version_status_defaults_active_and_an_upsert_keeps_it(
        self, storage: Storage
    ) -> None:
        """05 §5 item 35."""
        wf = storage.workflows
        assert await wf.upsert_workflow_version("wf", "h1", {"g": 1}, "src")
        assert await wf.get_workflow_version("wf", "h1") == WorkflowVersion(
            graph={"g": 1}, source="src", status=WorkflowVersionStatus.ACTIVE
        )
        assert await wf.upsert_workflow_version("wf", "h2", {"g": 2}, "s2", status="draft")
        assert not await wf.upsert_workflow_version(
            "wf", "h2", {"g": 3}, "s3", status=WorkflowVersionStatus.ACTIVE
        )
        draft = WorkflowVersion(graph={"g": 2}, source="s2", status=WorkflowVersionStatus.DRAFT)
        assert await wf.get_workflow_version("wf", "h2") == draft
        assert await storage.workflow_runs.get_workflow_version("wf", "h2") == draft

    async def test_update_workflow_version_status_moves_any_to_any(self, storage: Storage) -> None:
        """05 §5 item 35."""
        wf = storage.workflows
        await wf.upsert_workflow_version("wf", "h", [1], "src", status="draft")
        for status in ["declined", "active", "draft", "draft", WorkflowVersionStatus.DECLINED]:
            await wf.update_workflow_version_status("wf", "h", status)
            stored = await storage.workflow_runs.get_workflow_version("wf", "h")
            assert stored == WorkflowVersion(
                graph=[1], source="src", status=WorkflowVersionStatus(status)
            )

    async def test_update_unknown_version_raises_and_bad_status_is_invalid(
        self, storage: Storage
    ) -> None:
        """05 §5 item 35."""
        wf = storage.workflows
        await wf.upsert_workflow_version("wf", "h", None, "src")
        with pytest.raises(WorkflowVersionNotFound) as raised:
            await wf.update_workflow_version_status("wf", "other", "draft")
        assert isinstance(raised.value, NotFoundError)
        assert (raised.value.name, raised.value.graph_hash) == ("wf", "other")
        before = await snapshot(storage, versions=[("wf", "h")])
        await expect_invalid("archived", wf.update_workflow_version_status, "wf", "h", "archived")
        await expect_invalid("upsert archived", self._upsert_archived, storage)
        assert await snapshot(storage, versions=[("wf", "h"), ("wf", "x")]) == [*before, None]

    @staticmethod
    async def _upsert_archived(storage: Storage) -> None:
        await storage.workflows.upsert_workflow_version("wf", "x", None, "s", status="archived")

    async def test_run_status_is_independent_of_version_status(self, storage: Storage) -> None:
        """05 D12: status is never interpreted (a draft version's run is an ordinary run)."""
        wf = storage.workflows
        await wf.upsert_workflow_version("wf", "h", None, "src", status="draft")
        run_id = await new_run(storage, graph_hash="h")
        await wf.update_run_status(run_id, WorkflowStatus.COMPLETED)
        run = await wf.get_run(run_id)
        assert run is not None
        assert run.status is WorkflowStatus.COMPLETED
