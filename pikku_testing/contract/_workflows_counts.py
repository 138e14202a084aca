"""Workflow contract, `WorkflowRunService.count_runs`: runs per status, exact (an addition beyond
the spec, see docs/services/workflow-runs.md)."""

from __future__ import annotations

from datetime import timedelta

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.records import WorkflowStatus
from pikku_testing.contract._builders_workflows import (
    BAD_IDENTIFIERS,
    LONG_ID,
    T0,
    expect_invalid,
    new_run,
)

__all__ = ["WorkflowCountTests"]

_NONE: dict[WorkflowStatus, int] = dict.fromkeys(WorkflowStatus, 0)


def _counts(**by_status: int) -> dict[WorkflowStatus, int]:
    """Every status at `0` except the ones given (by value)."""
    return {**_NONE, **{WorkflowStatus(name): n for name, n in by_status.items()}}


class WorkflowCountTests:
    """`count_runs`: every status a key, counts equal to what `list_runs` finds, filtered by
    workflow exactly, following status changes, deletes and prunes at once."""

    async def _runs(self, storage: Storage, workflow: str, statuses: list[str]) -> list[str]:
        ids = []
        for status in statuses:
            run_id = await new_run(storage, workflow)
            if status != "running":
                await storage.workflows.update_run_status(run_id, status)
            ids.append(run_id)
        return ids

    async def test_count_runs_gives_zero_for_every_status_of_an_empty_store(
        self, storage: Storage
    ) -> None:
        """count_runs: every `WorkflowStatus` is a key, in enum order, also with no runs."""
        counts = await storage.workflow_runs.count_runs()
        assert counts == _NONE
        assert list(counts) == list(WorkflowStatus)
        assert await storage.workflow_runs.count_runs(workflow_name="wf") == _NONE

    async def test_count_runs_counts_each_status_exactly_as_list_runs_finds_them(
        self, storage: Storage
    ) -> None:
        """count_runs: exact counts (no cap), equal to the lengths of `list_runs` per status."""
        statuses = ["running"] * 7 + ["completed"] * 5 + ["failed"] * 3 + ["suspended"]
        await self._runs(storage, "wf", statuses)
        await self._runs(storage, "other", ["cancelled", "cancelled", "running"])
        runs = storage.workflow_runs
        counts = await runs.count_runs()
        assert counts == _counts(running=8, completed=5, failed=3, suspended=1, cancelled=2)
        for status in WorkflowStatus:
            assert counts[status] == len(await runs.list_runs(status=status, limit=1000))
            assert isinstance(counts[status], int)

    async def test_count_runs_by_workflow_matches_the_name_exactly(self, storage: Storage) -> None:
        """count_runs: the workflow filter is exact (no case folding, no pad space); an unknown
        name counts nothing."""
        await self._runs(storage, "a", ["running", "failed", "failed"])
        await self._runs(storage, "a ", ["completed"])
        await self._runs(storage, "A", ["running", "running"])
        await self._runs(storage, LONG_ID, ["suspended"])
        runs = storage.workflow_runs
        assert await runs.count_runs(workflow_name="a") == _counts(running=1, failed=2)
        assert await runs.count_runs(workflow_name="a ") == _counts(completed=1)
        assert await runs.count_runs(workflow_name="A") == _counts(running=2)
        assert await runs.count_runs(workflow_name=LONG_ID) == _counts(suspended=1)
        assert await runs.count_runs(workflow_name="b") == _NONE
        assert await runs.count_runs() == _counts(running=3, failed=2, completed=1, suspended=1)

    async def test_count_runs_follows_status_changes_deletes_and_prunes(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """count_runs: a completed write shows in the next count (one store, 01 §2)."""
        runs = storage.workflow_runs
        first, second, third = await self._runs(storage, "wf", ["running"] * 3)
        await storage.workflows.update_run_status(first, "completed")
        assert await runs.count_runs() == _counts(running=2, completed=1)
        await storage.workflows.update_run_status(first, "running")
        await storage.workflows.update_run_status(second, WorkflowStatus.FAILED)
        assert await runs.count_runs(workflow_name="wf") == _counts(running=2, failed=1)
        assert await runs.delete_run(third) is True
        assert await runs.count_runs() == _counts(running=1, failed=1)
        pikku_clock.set(T0 + timedelta(hours=1))
        assert await runs.prune_runs(finished_before=T0 + timedelta(hours=1)) == 1
        assert await runs.count_runs() == _counts(running=1)
        assert await runs.count_runs(workflow_name="wf") == _counts(running=1)

    async def test_count_runs_rejects_bad_workflow_names(self, storage: Storage) -> None:
        """count_runs: `workflow_name` is an identifier or `None` (D12: `""` is not "no
        filter"); a bad one raises `InvalidValue`."""
        await new_run(storage, "wf")
        runs = storage.workflow_runs
        for value in (*BAD_IDENTIFIERS, 123, b"wf", ["wf"]):
            await expect_invalid(
                f"count_runs(workflow_name={value!r})",
                lambda x: runs.count_runs(workflow_name=x),
                value,
            )
        assert await runs.count_runs() == _counts(running=1)
