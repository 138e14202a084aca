"""Workflow contract, concurrency between two instances and namespaces (docs/contract.md, 49 to 54,
59, 60).

55 to 58 and 61 are white-box backend tests, as is the borrowed-pool half of 60.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import ConflictError, RunNotFound, StepNotFound
from pikku_storage.interfaces import WorkflowService
from pikku_storage.records import StepState, StepStatus, WorkflowStatus, WorkflowVersion
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_workflows import (
    T0,
    assert_gone,
    assert_invariant,
    new_run,
    new_step,
    snapshot,
)

__all__ = ["WorkflowConcurrencyTests"]


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _two(storage: Storage, storage_factory: StorageFactory) -> list[Storage]:
    """The test's storage and a second instance on the same namespace."""
    return [storage, await storage_factory()]


async def _gather(*calls: Awaitable[object]) -> list[object]:
    """Run `calls` concurrently; each result is a value or the exception it raised."""
    return list(await asyncio.gather(*calls, return_exceptions=True))


def _step_write(wf: WorkflowService, step_id: str, index: int) -> Awaitable[object]:
    """One of the step writes, chosen by `index`."""
    kind = index % 6
    if kind == 0:
        return wf.set_step_running(step_id)
    if kind == 1:
        return wf.set_step_scheduled(step_id)
    if kind == 2:
        return wf.set_step_result(step_id, index)
    if kind == 3:
        return wf.set_step_error(step_id, {"message": str(index)})
    if kind == 4:
        return wf.claim_step(step_id)
    return wf.create_retry_attempt(step_id, "running" if index % 4 else "pending")


class WorkflowConcurrencyTests:
    """docs/concepts.md#concurrency item 49 to 54 (two instances racing), 59 (namespaces) and 60
    (init)."""

    # --- 49 -------------------------------------------------------------------------------

    async def test_concurrent_run_state_writes_on_distinct_keys_all_land(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 49."""
        instances = await _two(storage, storage_factory)
        run_id = await new_run(storage)
        results = await _gather(
            *(instances[i % 2].workflows.update_run_state(run_id, f"k{i}", i) for i in range(50))
        )
        assert results == [None] * 50
        assert await storage.workflows.get_run_state(run_id) == {f"k{i}": i for i in range(50)}

    async def test_concurrent_step_claims_have_exactly_one_winner(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 49."""
        instances = await _two(storage, storage_factory)
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        results = await _gather(
            *(instances[i % 2].workflows.claim_step(step.step_id) for i in range(20))
        )
        winners = [result for result in results if isinstance(result, StepState)]
        assert len(winners) == 1
        assert results.count(None) == 19
        assert winners[0] == await storage.workflows.get_step_state(run_id, "s")
        history = await storage.workflow_runs.get_run_history(run_id)
        assert [(entry.attempt_count, entry.status) for entry in history] == [
            (1, StepStatus.RUNNING)
        ]

    # --- 50 -------------------------------------------------------------------------------

    async def test_concurrent_inserts_of_one_step_name_have_one_winner(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 50."""
        instances = await _two(storage, storage_factory)
        run_id = await new_run(storage)
        results = await _gather(
            *(new_step(instances[i % 2], run_id, "s", data=i) for i in range(10))
        )
        winners = [result for result in results if isinstance(result, StepState)]
        assert len(winners) == 1
        assert sum(isinstance(result, ConflictError) for result in results) == 9
        assert await storage.workflows.get_step_state(run_id, "s") == winners[0]
        assert len(await storage.workflow_runs.get_run_steps(run_id)) == 1
        assert len(await storage.workflow_runs.get_run_history(run_id)) == 1

    # --- 51 -------------------------------------------------------------------------------

    async def test_concurrent_version_upserts_have_one_winner_whose_graph_is_stored(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 51."""
        instances = await _two(storage, storage_factory)
        results = await _gather(
            *(
                instances[i % 2].workflows.upsert_workflow_version("wf", "h", {"n": i}, "dsl")
                for i in range(10)
            )
        )
        assert results.count(True) == 1
        assert results.count(False) == 9
        winner = results.index(True)
        assert await storage.workflows.get_workflow_version("wf", "h") == WorkflowVersion(
            graph={"n": winner}, source="dsl"
        )

    async def test_concurrent_deletes_of_one_workflow_run_have_one_winner(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 51."""
        instances = await _two(storage, storage_factory)
        run_id = await new_run(storage)
        await new_step(storage, run_id, "s")
        results = await _gather(
            *(instances[i % 2].workflow_runs.delete_run(run_id) for i in range(10))
        )
        assert results.count(True) == 1
        assert results.count(False) == 9
        await assert_gone(storage, run_id)

    async def test_concurrent_workflow_create_run_calls_all_land(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 51."""
        instances = await _two(storage, storage_factory)
        results = await _gather(*(new_run(instances[i % 2], input=i) for i in range(50)))
        assert all(isinstance(result, str) for result in results)
        assert len(set(results)) == 50
        listed = await storage.workflow_runs.list_runs(limit=1000)
        assert {run.id for run in listed} == set(results)

    # --- 52 -------------------------------------------------------------------------------

    async def test_concurrent_retries_each_add_an_attempt(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 52."""
        instances = await _two(storage, storage_factory)
        run_id = await new_run(storage)
        step = await new_step(storage, run_id, "s")
        results = await _gather(
            *(
                instances[i % 2].workflows.create_retry_attempt(step.step_id, "pending")
                for i in range(10)
            )
        )
        assert all(isinstance(result, StepState) for result in results)
        assert (await storage.workflows.get_step_state(run_id, "s")).attempt_count == 11
        history = await storage.workflow_runs.get_run_history(run_id)
        assert sorted(entry.attempt_count for entry in history) == list(range(1, 12))
        await assert_invariant(storage, run_id)

    async def test_mixed_concurrent_transitions_and_retries_keep_the_invariant(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 52."""
        instances = await _two(storage, storage_factory)
        run_id = await new_run(storage)
        steps = [(await new_step(storage, run_id, name)).step_id for name in ("a", "b")]
        results = await _gather(
            *(_step_write(instances[i % 2].workflows, steps[i % 2], i // 2) for i in range(48))
        )
        assert not [result for result in results if isinstance(result, BaseException)]
        await assert_invariant(storage, run_id)

    # --- 53 -------------------------------------------------------------------------------

    async def test_delete_run_racing_step_writes_leaves_nothing_of_the_run(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 53 (the public-API half; the row/key check is a backend
        test)."""
        instances = await _two(storage, storage_factory)
        run_id = await new_run(storage)
        steps = [(await new_step(storage, run_id, f"s{i}")).step_id for i in range(3)]
        survivor = await new_run(storage)
        writes = [_step_write(instances[i % 2].workflows, steps[i % 3], i) for i in range(24)]
        writes.insert(12, instances[1].workflow_runs.delete_run(run_id))
        writes.append(storage.workflows.update_run_state(run_id, "k", 1))
        writes.append(instances[1].workflows.insert_step_state(run_id, "late", None, None))
        results = await _gather(*writes)
        assert results[12] is True
        for result in results:
            assert not isinstance(result, BaseException) or isinstance(
                result, StepNotFound | RunNotFound
            ), result
        await assert_gone(storage, run_id)
        for step_id in steps:
            assert isinstance(
                (await _gather(storage.workflows.set_step_running(step_id)))[0], StepNotFound
            )
        assert await storage.workflows.get_run(survivor) is not None

    # --- 54 -------------------------------------------------------------------------------

    async def test_concurrent_prunes_count_each_deleted_run_once(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#concurrency item 54."""
        instances = await _two(storage, storage_factory)
        for _ in range(20):
            await storage.workflows.update_run_status(await new_run(storage), "completed")
        pikku_clock.advance(1)
        counts = await _gather(
            *(
                instance.workflow_runs.prune_runs(finished_before=_at(1), batch_size=3)
                for instance in instances
            )
        )
        assert sum(count for count in counts if isinstance(count, int)) == 20
        assert await storage.workflow_runs.list_runs() == []

    async def test_run_moved_to_running_during_a_prune_is_not_deleted_after_the_move(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#concurrency item 54."""
        instances = await _two(storage, storage_factory)
        run_ids = [await new_run(storage) for _ in range(12)]
        for run_id in run_ids:
            await storage.workflows.update_run_status(run_id, "completed")
        pikku_clock.advance(1)
        moved = run_ids[::3]
        results = await _gather(
            instances[1].workflow_runs.prune_runs(finished_before=_at(1), batch_size=2),
            *(storage.workflows.update_run_status(run_id, "running") for run_id in moved),
        )
        for run_id, result in zip(moved, results[1:], strict=True):
            run = await storage.workflows.get_run(run_id)
            if result is None:
                assert run is not None
                assert run.status is WorkflowStatus.RUNNING
            else:
                assert isinstance(result, RunNotFound)
                assert run is None
        survivors = await storage.workflow_runs.list_runs()
        assert results[0] == len(run_ids) - len(survivors)
        assert all(run.status is WorkflowStatus.RUNNING for run in survivors)

    # --- 59 -------------------------------------------------------------------------------

    async def test_two_namespaces_do_not_see_each_others_runs_names_versions_or_locks(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/operations.md#storage-layout item 59."""
        isolated = await storage_factory(isolated=True)
        run_id = await new_run(storage, "mine")
        step = await new_step(storage, run_id, "s")
        await storage.workflows.update_run_state(run_id, "k", 1)
        await storage.workflows.upsert_workflow_version("mine", "h", 1, "dsl")
        assert await snapshot(isolated, [run_id], [("mine", "h")]) == [
            [],
            [],
            None,
            {},
            [],
            [],
            None,
        ]
        with pytest.raises(StepNotFound):
            await isolated.workflows.claim_step(step.step_id)
        assert await isolated.workflows.upsert_workflow_version("mine", "h", 2, "dsl") is True
        async with (
            storage.workflows.run_lock(run_id),
            storage.workflows.step_lock(run_id, "s"),
            isolated.workflows.run_lock(run_id, timeout=0),
            isolated.workflows.step_lock(run_id, "s", timeout=0),
        ):
            pass
        assert await storage.workflows.get_workflow_version("mine", "h") == WorkflowVersion(
            graph=1, source="dsl"
        )
        assert (await storage.workflows.get_step_state(run_id, "s")).status is StepStatus.PENDING

    # --- 60 -------------------------------------------------------------------------------

    async def test_workflow_init_twice_keeps_the_data(self, storage: Storage) -> None:
        """docs/operations.md#storage-layout item 60."""
        run_id = await new_run(storage)
        await new_step(storage, run_id, "s")
        before = await snapshot(storage, [run_id])
        await storage.workflows.init()
        await storage.workflow_runs.init()
        await storage.workflows.init()
        assert await snapshot(storage, [run_id]) == before

    async def test_concurrent_workflow_init_from_two_instances_keeps_the_data(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/operations.md#storage-layout item 60."""
        other = await storage_factory()
        run_id = await new_run(storage)
        before = await snapshot(storage, [run_id])
        results = await _gather(
            storage.workflows.init(),
            other.workflows.init(),
            storage.workflow_runs.init(),
            other.workflow_runs.init(),
        )
        assert results == [None] * 4
        assert await snapshot(storage, [run_id]) == before
        assert await snapshot(other, [run_id]) == before
