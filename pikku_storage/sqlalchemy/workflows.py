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

from sqlalchemy import case, literal, select
from sqlalchemy.engine import Connection

from pikku_storage._locks import LockName
from pikku_storage.codec import JsonValue, decode_optional
from pikku_storage.errors import (
    ConflictError,
    RunNotFound,
    StepFunctionMismatch,
    StepNotFound,
)
from pikku_storage.interfaces.workflows import (
    GraphStep,
    NewRun,
    NewStep,
    StepChange,
    WorkflowRunService,
    WorkflowService,
)
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
from pikku_storage.sqlalchemy import _rows
from pikku_storage.sqlalchemy._connection import SqlAlchemyService, chunks
from pikku_storage.sqlalchemy._errors import is_foreign_key_violation, is_unique_violation
from pikku_storage.sqlalchemy._locks import hold_lock
from pikku_storage.sqlalchemy._markers import active, dispatch_since

__all__ = ["SqlAlchemyWorkflowRunService", "SqlAlchemyWorkflowService"]

_STAMPS: Final = ("running_at", "scheduled_at", "succeeded_at", "failed_at")


def _later(column: Any, now: datetime) -> Any:
    """`column` raised to `now` (bound with the column's type)."""
    value = literal(now, column.type)
    return case((column < value, value), else_=column)


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
            select(
                history,
                steps.c.step_name,
                steps.c.retries,
                steps.c.retry_delay,
                steps.c.rpc_name,
                steps.c.from_step_name,
            )
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
            "deterministic": run.deterministic,
            "planned_steps": run.planned_steps,
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
            .values(
                status=status.value,
                output=output,
                error=error,
                updated_at=now,
                activity_at=_later(runs.c.activity_at, now),
            )
        )
        markers = self._db.markers
        running = status is WorkflowStatus.RUNNING

        def body(conn: Connection) -> None:
            if (conn.execute(stmt)).rowcount == 0:
                raise RunNotFound(run_id)
            # Entering or leaving `running` moves the run's pending steps in or out of the
            # undispatched set (cost: this run's pending steps).
            markers.redispatch(conn, run_id, running)

        await self._db.write(body)

    async def _update_run_state(self, run_id: str, name: str, value: str, now: datetime) -> None:
        runs, state = self._db.tables.workflow_runs, self._db.tables.workflow_state
        touch = (
            runs.update()
            .where(runs.c.workflow_run_id == run_id)
            .values(
                updated_at=now,
                activity_at=_later(runs.c.activity_at, now),
            )
        )
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
        insert_step, insert_history = s.insert_step, s.insert_history
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
            "from_step_name": step.from_step_name,
            "child_run_id": None,
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
            "child_run_id": None,
            **stamps,
        }
        markers = self._db.markers

        def body(conn: Connection) -> None:
            # The run row first (locked, `activity_at` raised), then the new rows.
            run_status = markers.touch_run(conn, step.run_id, step.now)
            if run_status is None:
                raise RunNotFound(step.run_id)
            step_values["dispatch_since"] = dispatch_since(StepStatus.PENDING, run_status, step.now)
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
        markers.remember(step.step_id, step.run_id)
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
        params = {"p_step_id": step_id}
        row: _rows.AnyRow = self._db.execute(conn, self._db.statements.step_by_id, params).all()[0]
        return row

    def _update_attempt(
        self, conn: Connection, step_id: str, attempt: int, values: dict[str, Any]
    ) -> None:
        stmt = self._db.statements.update_attempt(tuple(values))
        params = {f"p_{name}": value for name, value in values.items()}
        params["p_step_id"], params["p_attempt"] = step_id, attempt
        self._db.execute(conn, stmt, params)

    async def _set_step(self, step_id: str, change: StepChange, now: datetime) -> None:
        live, current = self._db.statements.set_step(change.stamp, change.outcome is not None)
        params: dict[str, Any] = {
            "p_step_id": step_id,
            "p_status": change.status.value,
            "p_now": now,
        }
        if change.outcome is not None:
            params["p_result"], params["p_error"] = change.outcome
        markers = self._db.markers

        def body(conn: Connection) -> None:
            # The run row with its markers, then the live step (their locks order writers),
            # then its current attempt, whose number the last statement reads itself.
            _run_id, run_status = markers.step_write(conn, step_id, change.status, now)
            params["p_dispatch"] = dispatch_since(change.status, run_status, now)
            self._db.execute(conn, live, params)
            self._db.execute(conn, current, params)

        await self._db.write(body)

    async def _claim_step(self, step_id: str, now: datetime) -> StepState | None:
        values = {"status": StepStatus.RUNNING.value, "running_at": now, "updated_at": now}
        claim, params = self._db.statements.claim_step, {"p_step_id": step_id, "p_now": now}
        markers = self._db.markers

        def body(conn: Connection) -> StepState | None:
            _run_status, old = markers.lock_step_of(conn, step_id)
            if self._db.execute(conn, claim, params).rowcount == 0:
                return None
            row = self._current_step(conn, step_id)
            self._update_attempt(conn, step_id, row.attempt_count, values)
            markers.bump(conn, str(row.workflow_run_id), 1 - active(old.status), now)
            return _rows.step_state(row)

        return await self._db.write(body)

    async def _create_retry_attempt(
        self, step_id: str, status: StepStatus, now: datetime
    ) -> StepState:
        s = self._db.statements
        stamps: dict[str, datetime | None] = dict.fromkeys(_STAMPS)
        if status is StepStatus.RUNNING:
            stamps["running_at"] = now
        params: dict[str, Any] = {
            "p_step_id": step_id,
            "p_status": status.value,
            "p_now": now,
            "p_running_at": stamps["running_at"],
        }
        markers = self._db.markers

        def body(conn: Connection) -> StepState:
            # The run's, then the step's row lock order concurrent retries: each adds its
            # own attempt.
            run_status, old = markers.lock_step_of(conn, step_id)
            params["p_dispatch"] = dispatch_since(status, run_status, now)
            self._db.execute(conn, s.retry_step, params)
            markers.bump(conn, str(old.workflow_run_id), active(status) - active(old.status), now)
            row = self._current_step(conn, step_id)
            attempt = {
                "workflow_step_id": step_id,
                "attempt": row.attempt_count,
                "workflow_run_id": str(row.workflow_run_id),
                "status": status.value,
                "result": None,
                "error": None,
                "child_run_id": None,
                "created_at": now,
                "updated_at": now,
                **stamps,
            }
            self._db.execute(conn, s.insert_history, attempt)
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
            .values(branch_taken=branch_key, updated_at=now, dispatch_since=self._redispatch(now))
        )
        markers = self._db.markers

        def body(conn: Connection) -> None:
            _run_status, row = markers.lock_step_of(conn, step_id)
            conn.execute(stmt)
            markers.bump(conn, str(row.workflow_run_id), 0, now)

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
            "status": status.value,
        }

        def body(conn: Connection) -> bool:
            return self._db.ops.insert_if_absent(conn, self._db.tables.workflow_versions, values)

        return await self._db.write(body)

    async def _update_workflow_version_status(
        self, name: str, graph_hash: str, status: WorkflowVersionStatus, now: datetime
    ) -> bool:
        versions = self._db.tables.workflow_versions
        stmt = (
            versions.update()
            .where(versions.c.workflow_name == name, versions.c.graph_hash == graph_hash)
            .values(status=status.value)
        )
        exists = select(versions.c.status).where(
            versions.c.workflow_name == name, versions.c.graph_hash == graph_hash
        )

        def body(conn: Connection) -> bool:
            # MySQL counts changed rows, not matched ones: an unchanged status reads back.
            if conn.execute(stmt).rowcount > 0:
                return True
            return conn.execute(exists).first() is not None

        return await self._db.write(body)

    # --- spec 05: claims for execution, child runs, instances, sweepers ---------------

    def _redispatch(self, now: datetime) -> Any:
        """`dispatch_since` following `updated_at = now` (kept NULL where it is NULL)."""
        column = self._db.tables.workflow_steps.c.dispatch_since
        return case((column.is_not(None), literal(now, column.type)), else_=None)

    async def _claim_step_for_execution(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        max_attempts: int | None,
        now: datetime,
    ) -> StepState | None:
        s = self._db.statements
        claim = s.claim_for_execution(max_attempts is not None)
        key = {"p_run_id": run_id, "p_step_name": step_name}
        params = {**key, "p_rpc": rpc_name, "p_now": now, "p_max_attempts": max_attempts}
        if max_attempts is None:
            del params["p_max_attempts"]
        markers = self._db.markers

        def body(conn: Connection) -> StepState | None:
            if markers.lock_run_status(conn, run_id) is None:
                raise StepNotFound.by_name(run_id, step_name)
            old = self._db.execute(conn, s.lock_step_by_name, key).first()
            if old is None:
                raise StepNotFound.by_name(run_id, step_name)
            if old.rpc_name != rpc_name:
                raise StepFunctionMismatch(run_id, step_name)
            if self._db.execute(conn, claim, params).rowcount == 0:
                return None
            row = self._db.execute(conn, s.step_by_name, key).all()[0]
            step_id = str(row.workflow_step_id)
            running = {"status": StepStatus.RUNNING.value, "running_at": now, "updated_at": now}
            if old.status == StepStatus.FAILED.value:
                attempt = {
                    "workflow_step_id": step_id,
                    "attempt": row.attempt_count,
                    "workflow_run_id": run_id,
                    "result": None,
                    "error": None,
                    "child_run_id": None,
                    "created_at": now,
                    "scheduled_at": None,
                    "succeeded_at": None,
                    "failed_at": None,
                    **running,
                }
                self._db.execute(conn, s.insert_history, attempt)
            else:
                self._update_attempt(conn, step_id, row.attempt_count, running)
            markers.bump(conn, run_id, 1 - active(old.status), now)
            return _rows.step_state(row)

        return await self._db.write(body)

    async def _set_step_child_run_id(self, step_id: str, child_run_id: str, now: datetime) -> None:
        steps = self._db.tables.workflow_steps
        live = (
            steps.update()
            .where(steps.c.workflow_step_id == step_id)
            .values(child_run_id=child_run_id, updated_at=now, dispatch_since=self._redispatch(now))
        )
        markers = self._db.markers

        def body(conn: Connection) -> None:
            _run_status, row = markers.lock_step_of(conn, step_id)
            conn.execute(live)
            values = {"child_run_id": child_run_id, "updated_at": now}
            self._update_attempt(conn, step_id, row.attempt_count, values)
            markers.bump(conn, str(row.workflow_run_id), 0, now)

        await self._db.write(body)

    async def _get_step_instances(self, run_id: str) -> list[StepInstance]:
        steps = self._db.tables.workflow_steps
        query = (
            select(
                steps.c.workflow_step_id,
                steps.c.step_name,
                steps.c.status,
                steps.c.from_step_name,
            )
            .where(steps.c.workflow_run_id == run_id)
            .order_by(steps.c.created_at, steps.c.seq)
        )

        def body(conn: Connection) -> list[StepInstance]:
            return [
                StepInstance(
                    step_id=str(row.workflow_step_id),
                    step_name=row.step_name,
                    status=StepStatus(row.status),
                    from_step_name=row.from_step_name,
                )
                for row in conn.execute(query).all()
            ]

        return await self._db.read(body)

    async def _find_stalled_runs(
        self, older_than: datetime, limit: int, after: StalledRun | None
    ) -> list[StalledRun]:
        query = self._db.statements.stalled_runs(None if after is None else after.run_id)
        params: dict[str, Any] = {"p_older": older_than, "p_limit": limit}
        if after is not None:
            params["p_after_at"], params["p_after_id"] = after.idle_since, after.run_id

        def body(conn: Connection) -> list[StalledRun]:
            return [
                StalledRun(
                    run_id=str(row.workflow_run_id),
                    workflow=row.workflow,
                    idle_since=row.activity_at,
                )
                for row in self._db.execute(conn, query, params).all()
            ]

        return await self._db.read(body)

    async def _find_undispatched_steps(
        self, older_than: datetime, limit: int, after: UndispatchedStep | None
    ) -> list[UndispatchedStep]:
        query = self._db.statements.undispatched_steps(None if after is None else after.step_id)
        params: dict[str, Any] = {"p_older": older_than, "p_limit": limit}
        if after is not None:
            params["p_after_at"], params["p_after_id"] = after.pending_since, after.step_id

        def body(conn: Connection) -> list[UndispatchedStep]:
            return [
                UndispatchedStep(
                    run_id=str(row.workflow_run_id),
                    step_id=str(row.workflow_step_id),
                    step_name=row.step_name,
                    rpc_name=row.rpc_name,
                    pending_since=row.dispatch_since,
                )
                for row in self._db.execute(conn, query, params).all()
            ]

        return await self._db.read(body)

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

    async def _count_runs(self, workflow_name: str | None) -> dict[WorkflowStatus, int]:
        query = self._db.statements.count_runs[workflow_name is not None]
        params = {} if workflow_name is None else {"p_workflow": workflow_name}

        def body(conn: Connection) -> dict[WorkflowStatus, int]:
            row = self._db.execute(conn, query, params).first()
            assert row is not None  # a SELECT without FROM always yields its one row
            return {status: int(getattr(row, status.value)) for status in WorkflowStatus}

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
