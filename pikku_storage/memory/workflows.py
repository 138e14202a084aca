"""In-memory `WorkflowService` and `WorkflowRunService` over one shared `WorkflowStore`.

Each hook calls one synchronous store method and never awaits inside it, so every call is
atomic; the store keeps JSON text and decodes on read, so results never alias it
(docs/operations.md#storage-layout).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime

from pikku_storage._locks import LockName
from pikku_storage.clock import Clock
from pikku_storage.codec import JsonValue
from pikku_storage.interfaces import WorkflowRunService, WorkflowService
from pikku_storage.interfaces.workflows import GraphStep, NewRun, NewStep, StepChange
from pikku_storage.memory._workflow_store import WorkflowStore
from pikku_storage.records import (
    RunStep,
    StalledRun,
    StepHistoryEntry,
    StepInstance,
    StepState,
    StepStatus,
    UndispatchedStep,
    WorkflowRun,
    WorkflowStatus,
    WorkflowVersion,
    WorkflowVersionStatus,
)

__all__ = ["InMemoryWorkflowRunService", "InMemoryWorkflowService", "WorkflowStore"]


class InMemoryWorkflowService(WorkflowService):
    """`WorkflowService` over a `WorkflowStore` (a new, empty one by default).

    Locks are the store's asyncio locks: they exclude every service on the same store within
    this process, and nothing beyond it (see docs/services/workflows.md#locks,
    docs/operations.md#storage-layout).
    """

    def __init__(self, store: WorkflowStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._store = store if store is not None else WorkflowStore()

    async def _get_run(self, run_id: str) -> WorkflowRun | None:
        return self._store.run_record(run_id)

    async def _get_run_history(self, run_id: str) -> list[StepHistoryEntry]:
        return self._store.history(run_id)

    async def _get_workflow_version(self, name: str, graph_hash: str) -> WorkflowVersion | None:
        return self._store.version(name, graph_hash)

    async def _create_run(self, run: NewRun) -> None:
        self._store.create_run(run)

    async def _update_run_status(
        self,
        run_id: str,
        status: WorkflowStatus,
        output: str | None,
        error: str | None,
        now: datetime,
    ) -> None:
        self._store.update_run_status(run_id, status, output, error, now)

    async def _update_run_state(self, run_id: str, name: str, value: str, now: datetime) -> None:
        self._store.update_run_state(run_id, name, value, now)

    async def _get_run_state(self, run_id: str) -> dict[str, JsonValue]:
        return self._store.run_state(run_id)

    async def _insert_step_state(self, step: NewStep) -> StepState:
        return self._store.insert_step(step)

    async def _get_step_state(self, run_id: str, step_name: str) -> StepState | None:
        return self._store.step_state(run_id, step_name)

    async def _set_step(self, step_id: str, change: StepChange, now: datetime) -> None:
        self._store.set_step(step_id, change, now)

    async def _claim_step(self, step_id: str, now: datetime) -> StepState | None:
        return self._store.claim_step(step_id, now)

    async def _create_retry_attempt(
        self, step_id: str, status: StepStatus, now: datetime
    ) -> StepState:
        return self._store.create_retry_attempt(step_id, status, now)

    async def _get_graph_steps(self, run_id: str) -> list[GraphStep]:
        return self._store.graph_steps(run_id)

    async def _get_step_names(self, run_id: str, names: list[str]) -> set[str]:
        return self._store.step_names(run_id, names)

    async def _get_succeeded_results(self, run_id: str, names: list[str]) -> dict[str, JsonValue]:
        return self._store.succeeded_results(run_id, names)

    async def _set_branch_taken(self, step_id: str, branch_key: str, now: datetime) -> None:
        self._store.set_branch_taken(step_id, branch_key, now)

    async def _upsert_workflow_version(
        self,
        name: str,
        graph_hash: str,
        graph: str,
        source: str,
        status: WorkflowVersionStatus,
        now: datetime,
    ) -> bool:
        return self._store.upsert_version(name, graph_hash, graph, source, status, now)

    async def _update_workflow_version_status(
        self, name: str, graph_hash: str, status: WorkflowVersionStatus, now: datetime
    ) -> bool:
        return self._store.update_version_status(name, graph_hash, status)

    async def _claim_step_for_execution(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        max_attempts: int | None,
        now: datetime,
    ) -> StepState | None:
        return self._store.claim_step_for_execution(run_id, step_name, rpc_name, max_attempts, now)

    async def _set_step_child_run_id(self, step_id: str, child_run_id: str, now: datetime) -> None:
        self._store.set_step_child_run_id(step_id, child_run_id, now)

    async def _get_step_instances(self, run_id: str) -> list[StepInstance]:
        return self._store.step_instances(run_id)

    async def _find_stalled_runs(
        self, older_than: datetime, limit: int, after: StalledRun | None
    ) -> list[StalledRun]:
        return self._store.stalled_runs(older_than, limit, after)

    async def _find_undispatched_steps(
        self, older_than: datetime, limit: int, after: UndispatchedStep | None
    ) -> list[UndispatchedStep]:
        return self._store.undispatched_steps(older_than, limit, after)

    def _lock(self, name: LockName, timeout: float | None) -> AbstractAsyncContextManager[None]:
        return self._store.locks.hold(name.key, str(name), timeout)


class InMemoryWorkflowRunService(WorkflowRunService):
    """`WorkflowRunService` over the `WorkflowStore` of an `InMemoryWorkflowService`."""

    def __init__(self, store: WorkflowStore | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._store = store if store is not None else WorkflowStore()

    async def _get_run(self, run_id: str) -> WorkflowRun | None:
        return self._store.run_record(run_id)

    async def _get_run_history(self, run_id: str) -> list[StepHistoryEntry]:
        return self._store.history(run_id)

    async def _get_workflow_version(self, name: str, graph_hash: str) -> WorkflowVersion | None:
        return self._store.version(name, graph_hash)

    async def _list_runs(
        self, workflow_name: str | None, status: WorkflowStatus | None, limit: int, offset: int
    ) -> list[WorkflowRun]:
        return self._store.list_runs(workflow_name, status, limit, offset)

    async def _count_runs(self, workflow_name: str | None) -> dict[WorkflowStatus, int]:
        return self._store.count_runs(workflow_name)

    async def _get_run_steps(self, run_id: str) -> list[RunStep]:
        return self._store.run_steps(run_id)

    async def _get_distinct_workflow_names(self) -> list[str]:
        return self._store.distinct_workflow_names()

    async def _delete_run(self, run_id: str) -> bool:
        return self._store.delete_run(run_id)

    async def _prune_runs(
        self, cutoff: datetime, statuses: tuple[WorkflowStatus, ...], batch_size: int
    ) -> int:
        return self._store.prune_runs(cutoff, statuses, batch_size)
