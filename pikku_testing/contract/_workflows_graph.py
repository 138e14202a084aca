"""Workflow contract, graph primitives and versions (see docs/contract.md, 28 to 31)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.records import (
    GraphState,
    StepStatus,
    WorkflowStatus,
    WorkflowVersion,
)
from pikku_testing.contract._builders_workflows import (
    T0,
    expected_run,
    expected_step,
    new_run,
    new_step,
    unknown_id,
)

__all__ = ["WorkflowGraphTests"]


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class WorkflowGraphTests:
    """docs/services/workflows.md#graph-primitives item 28 to 31: completed graph state, branch
    keys, node queries, versions."""

    # --- 28 -------------------------------------------------------------------------------

    async def test_completed_graph_state_lists_succeeded_steps_sorted(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 28."""
        wf = storage.workflows
        run_id = await new_run(storage)
        for name in ("c", "a", "B", "b"):
            await wf.set_step_result((await new_step(storage, run_id, name)).step_id, None)
        assert await wf.get_completed_graph_state(run_id) == GraphState(
            completed_node_ids=["B", "a", "b", "c"]
        )

    async def test_completed_graph_state_lists_failed_steps_once_retries_are_exhausted(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 28."""
        wf = storage.workflows
        run_id = await new_run(storage)
        for name in ("z", "x"):
            step = await new_step(storage, run_id, name)
            await wf.set_step_error(step.step_id, {"message": "m"})
        retried = (await new_step(storage, run_id, "y", retries=2)).step_id
        for attempt in (1, 2, 3):
            if attempt > 1:
                await wf.create_retry_attempt(retried, "running")
            await wf.set_step_error(retried, {"message": "m"})
            failed = ["x", "y", "z"] if attempt == 3 else ["x", "z"]
            assert await wf.get_completed_graph_state(run_id) == GraphState(failed_node_ids=failed)

    async def test_completed_graph_state_ignores_pending_running_and_scheduled_steps(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 28."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await new_step(storage, run_id, "pending")
        await wf.set_step_running((await new_step(storage, run_id, "running")).step_id)
        await wf.set_step_scheduled((await new_step(storage, run_id, "scheduled")).step_id)
        assert await wf.get_completed_graph_state(run_id) == GraphState()

    async def test_completed_graph_state_of_an_unknown_run_is_empty(self, storage: Storage) -> None:
        """docs/services/workflows.md#graph-primitives item 28."""
        assert await storage.workflows.get_completed_graph_state(unknown_id()) == GraphState()

    # --- 29 -------------------------------------------------------------------------------

    async def test_branch_keys_come_only_from_succeeded_steps_of_the_run(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 29."""
        wf = storage.workflows
        run_id, other = await new_run(storage), await new_run(storage)
        chosen = (await new_step(storage, run_id, "choose")).step_id
        await wf.set_branch_taken(chosen, "left")
        await wf.set_step_result(chosen, None)
        pending = (await new_step(storage, run_id, "pending")).step_id
        await wf.set_branch_taken(pending, "right")
        await wf.set_step_result((await new_step(storage, run_id, "plain")).step_id, 1)
        elsewhere = (await new_step(storage, other, "plain")).step_id
        await wf.set_branch_taken(elsewhere, "other")
        await wf.set_step_result(elsewhere, 1)
        assert await wf.get_completed_graph_state(run_id) == GraphState(
            completed_node_ids=["choose", "plain"], branch_keys={"choose": "left"}
        )

    async def test_set_branch_taken_overwrites_and_moves_only_the_step_updated_at(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 29."""
        wf = storage.workflows
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        await wf.set_step_result(step.step_id, 1)
        history = await wf.get_run_history(run_id)
        pikku_clock.set(_at(1))
        await wf.set_branch_taken(step.step_id, "a")
        pikku_clock.set(_at(2))
        await wf.set_branch_taken(step.step_id, "b")
        assert await wf.get_step_state(run_id, "s") == expected_step(
            step.step_id, status=StepStatus.SUCCEEDED, result=1, succeeded_at=T0, updated_at=_at(2)
        )
        assert await wf.get_run_history(run_id) == history
        assert await wf.get_run(run_id) == expected_run(run_id)
        state = await wf.get_completed_graph_state(run_id)
        assert state.branch_keys == {"s": "b"}

    # --- 30 -------------------------------------------------------------------------------

    async def test_get_nodes_without_steps_keeps_input_order_and_duplicates(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 30."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await new_step(storage, run_id, "a")
        await new_step(storage, run_id, "b")
        nodes = ["c", "a", "d", "c", "b", "A"]
        assert await wf.get_nodes_without_steps(run_id, nodes) == ["c", "d", "c", "A"]
        assert await wf.get_nodes_without_steps(run_id, []) == []
        assert await wf.get_nodes_without_steps(unknown_id(), nodes) == nodes
        assert await wf.get_nodes_without_steps(run_id, ("b", "b")) == []

    async def test_get_node_results_includes_none_and_omits_unsucceeded_nodes(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 30."""
        wf = storage.workflows
        run_id = await new_run(storage)
        await wf.set_step_result((await new_step(storage, run_id, "ok")).step_id, {"v": 1})
        await wf.set_step_result((await new_step(storage, run_id, "sleep")).step_id, None)
        await new_step(storage, run_id, "pending")
        failed = (await new_step(storage, run_id, "failed")).step_id
        await wf.set_step_result(failed, "old")
        await wf.set_step_error(failed, {"message": "m"})
        nodes = ["ok", "sleep", "pending", "failed", "missing", "ok"]
        assert await wf.get_node_results(run_id, nodes) == {"ok": {"v": 1}, "sleep": None}
        assert await wf.get_node_results(run_id, []) == {}
        assert await wf.get_node_results(unknown_id(), ["ok"]) == {}

    # --- 31 -------------------------------------------------------------------------------

    async def test_upsert_workflow_version_stores_once_and_keeps_the_first_graph(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 31."""
        wf = storage.workflows
        assert await wf.upsert_workflow_version("wf", "h", {"nodes": [1]}, "dsl") is True
        pikku_clock.advance(1)
        assert await wf.upsert_workflow_version("wf", "h", {"nodes": [2]}, "graph") is False
        assert await wf.get_workflow_version("wf", "h") == WorkflowVersion(
            graph={"nodes": [1]}, source="dsl"
        )

    async def test_workflow_versions_of_unknown_keys_read_none_and_hashes_are_independent(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 31."""
        wf = storage.workflows
        assert await wf.get_workflow_version("wf", "h") is None
        assert await wf.upsert_workflow_version("wf", "h1", 1, "dsl") is True
        assert await wf.upsert_workflow_version("wf", "h2", 2, "complex") is True
        assert await wf.upsert_workflow_version("other", "h1", 3, "graph") is True
        versions = [
            await storage.workflow_runs.get_workflow_version(name, graph_hash)
            for name, graph_hash in (("wf", "h1"), ("wf", "h2"), ("other", "h1"), ("wf", "h3"))
        ]
        assert versions == [
            WorkflowVersion(graph=1, source="dsl"),
            WorkflowVersion(graph=2, source="complex"),
            WorkflowVersion(graph=3, source="graph"),
            None,
        ]

    async def test_workflow_version_long_source_and_colon_names_round_trip(
        self, storage: Storage
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 31."""
        source = "export const flow = () => {\n  // 名前 😀\n}\n" * 5000
        wf = storage.workflows
        assert await wf.upsert_workflow_version("ns:wf:v1", "sha256:ab:cd", {"a": 1}, source)
        assert await wf.get_workflow_version("ns:wf:v1", "sha256:ab:cd") == WorkflowVersion(
            graph={"a": 1}, source=source
        )

    async def test_workflow_versions_survive_delete_run_and_prune_runs(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/workflows.md#graph-primitives item 31."""
        wf = storage.workflows
        deleted = await new_run(storage, graph_hash="h")
        pruned = await new_run(storage, graph_hash="h")
        await wf.upsert_workflow_version("wf", "h", {"g": 1}, "dsl")
        await wf.update_run_status(pruned, WorkflowStatus.COMPLETED)
        assert await storage.workflow_runs.delete_run(deleted) is True
        pikku_clock.advance(1)
        assert await storage.workflow_runs.prune_runs(finished_before=_at(1)) == 1
        assert await wf.get_workflow_version("wf", "h") == WorkflowVersion(
            graph={"g": 1}, source="dsl"
        )
