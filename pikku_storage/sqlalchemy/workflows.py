"""`SqlAlchemyWorkflowService` and `SqlAlchemyWorkflowRunService` on SQLAlchemy Core (async).

Every hook is one transaction (`Database.write`/`read`); a step write updates the live step and
its current history row together; claims are conditional UPDATEs judged by row count.
Removals lock the run and its steps, then delete children explicitly, so no row is left even
where foreign keys are not enforced (see docs/services/workflows.md, docs/services/workflow-runs.md,
docs/operations.md#storage-layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.engine import Connection

from pikku_storage._locks import LockName
from pikku_storage.codec import JsonValue, decode_optional
from pikku_storage.errors import ConflictError, RunNotFound, StepNotFound
from pikku_storage.interfaces.workflows import (
    CLAIMABLE_STATUSES,
    GraphStep,
    NewRun,
    NewStep,
    StepChange,
    WorkflowRunService,
    WorkflowService,
)
from pikku_storage.records import (
    RunStep,
    StepHistoryEntry,
    StepState,
    StepStatus,
    WorkflowRun,
    WorkflowStatus,
    WorkflowVersion,
    WorkflowVersionStatus,
)
from pikku_storage.sqlalchemy import _rows
from pikku_storage.sqlalchemy._connection import SqlAlchemyService, chunks
from pikku_storage.sqlalchemy._errors import is_foreign_key_violation, is_unique_violation
from pikku_storage.sqlalchemy._locks import hold_lock

__all__ = ["SqlAlchemyWorkflowRunService", "SqlAlchemyWorkflowService"]

_STAMPS: Final = ("running_at", "scheduled_at", "succeeded_at", "failed_at")


class _WorkflowBase(SqlAlchemyService):
    """The reads both workflow services offer."""

    async def _get_run(self, run_id: str) -> WorkflowRun | None:
        query = self._db.statements.get_run
        params = {"p_run_id": run_id}

        def body(conn: Connection) -> WorkflowRun | None:
            row = self._db.execute(conn, query, params).first()
            return None if row is None else _rows.workflow_run(row)

        return await self._db.read(body)

    async def _get_run_history(self, run_id: str) -> list[StepHistoryEntry]:
        history, steps = self._db.tables.workflow_history, self._db.tables.workflow_steps
        query = (
            select(history, steps.c.step_name, steps.c.retries, steps.c.retry_delay)
            .join(steps, steps.c.workflow_step_id == history.c.workflow_step_id)
            .where(history.c.workflow_run_id == run_id)
            .order_by(history.c.created_at, history.c.seq)
        )

        def body(conn: Connection) -> list[StepHistoryEntry]:
            return [_rows.history_entry(row) for row in conn.execute(query).all()]

        return await self._db.read(body)

    async def _get_workflow_version(self, name: str, graph_hash: str) -> WorkflowVersion | None:
        versions = self._db.tables.workflow_versions
        query = select(versions).where(
            versions.c.workflow_name == name, versions.c.graph_hash == graph_hash
        )

        def body(conn: Connection) -> WorkflowVersion | None:
            row = (conn.execute(query)).first()
            return None if row is None else _rows.workflow_version(row)

        return await self._db.read(body)


class SqlAlchemyWorkflowService(_WorkflowBase, WorkflowService):
    """Workflow state on PostgreSQL, MySQL/MariaDB or SQLite through SQLAlchemy
    (docs/operations.md#storage-layout).

    Locks span processes on PostgreSQL and MySQL, and one process on SQLite.
    """

    # --- runs and state ---------------------------------------------------------------

    async def _create_run(self, run: NewRun) -> None:
        stmt = self._db.statements.insert_run
        values = {
            "workflow_run_id": run.run_id,
            "workflow": run.workflow,
            "status": WorkflowStatus.RUNNING.value,
            "input": run.input,
            "output": None,
            "error": None,
            "inline": run.inline,
            "graph_hash": run.graph_hash,
            "wire": run.wire,
            "created_at": run.now,
            "updated_at": run.now,
            "deterministic": getattr(run, "deterministic", False),
            "planned_steps": getattr(run, "planned_steps", "[]"),
            "active_steps": 0,
            "activity_at": run.now,
        }

        def body(conn: Connection) -> None:
            self._db.execute(conn, stmt, values)

        await self._db.write(body)

    async def _update_run_status(
        self,
        run_id: str,
        status: WorkflowStatus,
        output: str | None,
        error: str | None,
        now: datetime,
    ) -> None:
        runs = self._db.tables.workflow_runs
        stmt = (
            runs.update()
            .where(runs.c.workflow_run_id == run_id)
            .values(status=status.value, output=output, error=error, updated_at=now)
        )

        def body(conn: Connection) -> None:
            if (conn.execute(stmt)).rowcount == 0:
                raise RunNotFound(run_id)

        await self._db.write(body)

    async def _update_run_state(self, run_id: str, name: str, value: str, now: datetime) -> None:
        runs, state = self._db.tables.workflow_runs, self._db.tables.workflow_state
        touch = runs.update().where(runs.c.workflow_run_id == run_id).values(updated_at=now)
        upsert = self._db.ops.upsert(
            state,
            {"workflow_run_id": run_id, "name": name, "value": value},
            keys=("workflow_run_id", "name"),
            update=("value",),
        )

        def body(conn: Connection) -> None:
            # The run's row lock orders writers of one run and keeps a delete out.
            if (conn.execute(touch)).rowcount == 0:
                raise RunNotFound(run_id)
            conn.execute(upsert)

        await self._db.write(body)

    async def _get_run_state(self, run_id: str) -> dict[str, JsonValue]:
        state = self._db.tables.workflow_state
        query = select(state.c.name, state.c.value).where(state.c.workflow_run_id == run_id)

        def body(conn: Connection) -> dict[str, JsonValue]:
            return {row.name: decode_optional(row.value) for row in conn.execute(query)}

        return await self._db.read(body)

    # --- steps ------------------------------------------------------------------------

    async def _insert_step_state(self, step: NewStep) -> StepState:
        s = self._db.statements
        exists, insert_step, insert_history = (
            s.run_exists_for_share,
            s.insert_step,
            s.insert_history,
        )
        stamps = dict.fromkeys(_STAMPS)
        step_values = {
            "workflow_step_id": step.step_id,
            "workflow_run_id": step.run_id,
            "step_name": step.step_name,
            "rpc_name": step.rpc_name,
            "data": step.data,
            "status": StepStatus.PENDING.value,
            "result": None,
            "error": None,
            "attempt_count": 1,
            "retries": step.retries,
            "retry_delay": step.retry_delay,
            "branch_taken": None,
            "created_at": step.now,
            "updated_at": step.now,
            **stamps,
        }
        history_values = {
            "workflow_step_id": step.step_id,
            "attempt": 1,
            "workflow_run_id": step.run_id,
            "status": StepStatus.PENDING.value,
            "result": None,
            "error": None,
            "created_at": step.now,
            "updated_at": step.now,
            **stamps,
        }
        run_key = {"p_run_id": step.run_id}

        check_run = not self._db.enforces_foreign_keys

        def body(conn: Connection) -> None:
            # Where foreign keys hold, the insert's own check (a violation is `RunNotFound`
            # below) takes the same shared lock on the run row as this read would.
            if check_run and self._db.execute(conn, exists, run_key).first() is None:
                raise RunNotFound(step.run_id)
            try:
                self._db.execute(conn, insert_step, step_values)
            except Exception as error:
                if is_unique_violation(error):
                    raise ConflictError.step(step.run_id, step.step_name) from error
                if is_foreign_key_violation(error):
                    raise RunNotFound(step.run_id) from error
                raise
            self._db.execute(conn, insert_history, history_values)

        await self._db.write(body)
        return step.initial_state()

    async def _get_step_state(self, run_id: str, step_name: str) -> StepState | None:
        steps = self._db.tables.workflow_steps
        query = select(steps).where(
            steps.c.workflow_run_id == run_id, steps.c.step_name == step_name
        )

        def body(conn: Connection) -> StepState | None:
            row = (conn.execute(query)).first()
            return None if row is None else _rows.step_state(row)

        return await self._db.read(body)

    def _current_step(self, conn: Connection, step_id: str) -> _rows.AnyRow:
        """The step row (already locked by this transaction's UPDATE)."""
        steps = self._db.tables.workflow_steps
        query = select(steps).where(steps.c.workflow_step_id == step_id)
        return (conn.execute(query)).one()

    def _update_attempt(
        self, conn: Connection, step_id: str, attempt: int, values: dict[str, Any]
    ) -> None:
        history = self._db.tables.workflow_history
        conn.execute(
            history.update()
            .where(history.c.workflow_step_id == step_id, history.c.attempt == attempt)
            .values(**values)
        )

    async def _set_step(self, step_id: str, change: StepChange, now: datetime) -> None:
        live, current = self._db.statements.set_step(change.stamp, change.outcome is not None)
        params: dict[str, Any] = {
            "p_step_id": step_id,
            "p_status": change.status.value,
            "p_now": now,
        }
        if change.outcome is not None:
            params["p_result"], params["p_error"] = change.outcome

        def body(conn: Connection) -> None:
            # The live step (its row lock orders writers), then its current attempt, whose
            # number the second statement reads itself.
            if self._db.execute(conn, live, params).rowcount == 0:
                raise StepNotFound.by_id(step_id)
            self._db.execute(conn, current, params)

        await self._db.write(body)

    async def _claim_step(self, step_id: str, now: datetime) -> StepState | None:
        steps = self._db.tables.workflow_steps
        values = {"status": StepStatus.RUNNING.value, "running_at": now, "updated_at": now}
        claim = (
            steps.update()
            .where(
                steps.c.workflow_step_id == step_id,
                steps.c.status.in_([s.value for s in CLAIMABLE_STATUSES]),
            )
            .values(**values)
        )
        exists = select(steps.c.seq).where(steps.c.workflow_step_id == step_id)

        def body(conn: Connection) -> StepState | None:
            if (conn.execute(claim)).rowcount == 0:
                if (conn.execute(exists)).first() is None:
                    raise StepNotFound.by_id(step_id)
                return None
            row = self._current_step(conn, step_id)
            self._update_attempt(conn, step_id, row.attempt_count, values)
            return _rows.step_state(row)

        return await self._db.write(body)

    async def _create_retry_attempt(
        self, step_id: str, status: StepStatus, now: datetime
    ) -> StepState:
        t = self._db.tables
        steps = t.workflow_steps
        stamps: dict[str, datetime | None] = dict.fromkeys(_STAMPS)
        if status is StepStatus.RUNNING:
            stamps["running_at"] = now
        bump = (
            steps.update()
            .where(steps.c.workflow_step_id == step_id)
            .values(
                attempt_count=steps.c.attempt_count + 1,
                status=status.value,
                result=None,
                error=None,
                updated_at=now,
                **stamps,
            )
        )

        def body(conn: Connection) -> StepState:
            # The step's row lock orders concurrent retries: each adds its own attempt.
            if (conn.execute(bump)).rowcount == 0:
                raise StepNotFound.by_id(step_id)
            row = self._current_step(conn, step_id)
            conn.execute(
                t.workflow_history.insert().values(
                    workflow_step_id=step_id,
                    attempt=row.attempt_count,
                    workflow_run_id=row.workflow_run_id,
                    status=status.value,
                    result=None,
                    error=None,
                    created_at=now,
                    updated_at=now,
                    **stamps,
                )
            )
            return _rows.step_state(row)

        return await self._db.write(body)

    # --- graph primitives -------------------------------------------------------------

    async def _get_graph_steps(self, run_id: str) -> list[GraphStep]:
        steps = self._db.tables.workflow_steps
        query = select(
            steps.c.step_name,
            steps.c.status,
            steps.c.attempt_count,
            steps.c.retries,
            steps.c.branch_taken,
        ).where(steps.c.workflow_run_id == run_id)

        def body(conn: Connection) -> list[GraphStep]:
            return [_rows.graph_step(row) for row in conn.execute(query).all()]

        return await self._db.read(body)

    async def _get_step_names(self, run_id: str, names: list[str]) -> set[str]:
        steps = self._db.tables.workflow_steps

        def body(conn: Connection) -> set[str]:
            found: set[str] = set()
            for part in chunks(names):
                query = select(steps.c.step_name).where(
                    steps.c.workflow_run_id == run_id, steps.c.step_name.in_(part)
                )
                found.update((conn.execute(query)).scalars())
            return found

        return await self._db.read(body)

    async def _get_succeeded_results(self, run_id: str, names: list[str]) -> dict[str, JsonValue]:
        steps = self._db.tables.workflow_steps

        def body(conn: Connection) -> dict[str, JsonValue]:
            results: dict[str, JsonValue] = {}
            for part in chunks(names):
                query = select(steps.c.step_name, steps.c.result).where(
                    steps.c.workflow_run_id == run_id,
                    steps.c.step_name.in_(part),
                    steps.c.status == StepStatus.SUCCEEDED.value,
                )
                for row in conn.execute(query).all():
                    results[row.step_name] = decode_optional(row.result)
            return results

        return await self._db.read(body)

    async def _set_branch_taken(self, step_id: str, branch_key: str, now: datetime) -> None:
        steps = self._db.tables.workflow_steps
        stmt = (
            steps.update()
            .where(steps.c.workflow_step_id == step_id)
            .values(branch_taken=branch_key, updated_at=now)
        )

        def body(conn: Connection) -> None:
            if (conn.execute(stmt)).rowcount == 0:
                raise StepNotFound.by_id(step_id)

        await self._db.write(body)

    # --- versions and locks -----------------------------------------------------------

    async def _upsert_workflow_version(
        self,
        name: str,
        graph_hash: str,
        graph: str,
        source: str,
        status: WorkflowVersionStatus,  # stored by the spec 05 migration (its helper)
        now: datetime,
    ) -> bool:
        values = {
            "workflow_name": name,
            "graph_hash": graph_hash,
            "graph": graph,
            "source": source,
            "created_at": now,
        }

        def body(conn: Connection) -> bool:
            return self._db.ops.insert_if_absent(conn, self._db.tables.workflow_versions, values)

        return await self._db.write(body)

    def _lock(self, name: LockName, timeout: float | None) -> AbstractAsyncContextManager[None]:
        return hold_lock(self._db, name, timeout)


class SqlAlchemyWorkflowRunService(_WorkflowBase, WorkflowRunService):
    """Console queries over the tables of a `SqlAlchemyWorkflowService`
    (docs/services/workflow-runs.md, docs/operations.md#storage-layout)."""

    async def _list_runs(
        self, workflow_name: str | None, status: WorkflowStatus | None, limit: int, offset: int
    ) -> list[WorkflowRun]:
        query = self._db.statements.list_runs[workflow_name is not None, status is not None]
        params: dict[str, Any] = {"p_limit": limit, "p_offset": offset}
        if workflow_name is not None:
            params["p_workflow"] = workflow_name
        if status is not None:
            params["p_status"] = status.value

        def body(conn: Connection) -> list[WorkflowRun]:
            return [_rows.workflow_run(row) for row in self._db.execute(conn, query, params).all()]

        return await self._db.read(body)

    async def _get_run_steps(self, run_id: str) -> list[RunStep]:
        steps = self._db.tables.workflow_steps
        query = (
            select(steps)
            .where(steps.c.workflow_run_id == run_id)
            .order_by(steps.c.created_at, steps.c.seq)
        )

        def body(conn: Connection) -> list[RunStep]:
            return [_rows.run_step(row) for row in conn.execute(query).all()]

        return await self._db.read(body)

    async def _get_distinct_workflow_names(self) -> list[str]:
        column = self._db.tables.workflow_runs.c.workflow

        def body(conn: Connection) -> list[str]:
            return sorted(self._db.ops.distinct_ascending(conn, column))

        return await self._db.read(body)

    def _delete_runs(self, conn: Connection, run_ids: Sequence[str]) -> None:
        """Delete the runs' history, steps and state; the runs themselves are the caller's."""
        t = self._db.tables
        steps, ops = t.workflow_steps, self._db.ops
        # Lock the steps first: a step write in flight finishes before its rows go.
        ops.lock_keys(conn, steps.c.workflow_run_id, run_ids, steps.c.seq)
        ops.delete_keys(conn, t.workflow_history.c.workflow_run_id, run_ids)
        ops.delete_keys(conn, steps.c.workflow_run_id, run_ids)
        ops.delete_keys(conn, t.workflow_state.c.workflow_run_id, run_ids)

    async def _delete_run(self, run_id: str) -> bool:
        runs = self._db.tables.workflow_runs
        lock = self._db.ops.for_update(select(runs.c.seq).where(runs.c.workflow_run_id == run_id))

        def body(conn: Connection) -> bool:
            if (conn.execute(lock)).first() is None:
                return False
            self._delete_runs(conn, [run_id])
            conn.execute(runs.delete().where(runs.c.workflow_run_id == run_id))
            return True

        return await self._db.write(body)

    async def _prune_runs(
        self, cutoff: datetime, statuses: tuple[WorkflowStatus, ...], batch_size: int
    ) -> int:
        runs = self._db.tables.workflow_runs
        total = 0
        for status in statuses:
            stale = (runs.c.status == status.value) & (runs.c.updated_at < cutoff)
            pick = self._db.ops.for_update(
                select(runs.c.workflow_run_id)
                .where(stale)
                .order_by(runs.c.updated_at, runs.c.seq)
                .limit(batch_size),
                skip_locked=True,
            )

            def body(conn: Connection, pick: Any = pick, stale: Any = stale) -> tuple[int, int]:
                locked = [str(value) for value in (conn.execute(pick)).scalars()]
                ids: list[str] = []
                for part in chunks(locked):  # re-checked on the locked rows' latest version
                    confirm = select(runs.c.workflow_run_id).where(
                        runs.c.workflow_run_id.in_(part), stale
                    )
                    ids.extend(str(value) for value in (conn.execute(confirm)).scalars())
                deleted = 0
                if ids:
                    self._delete_runs(conn, ids)
                    deleted = self._db.ops.delete_keys(conn, runs.c.workflow_run_id, ids, stale)
                return len(locked), deleted

            while True:
                selected, deleted = await self._db.write(body)
                total += deleted
                if selected < batch_size:
                    break
        return total
