"""`PgWorkflowService` and `PgWorkflowRunService`: workflow state in PostgreSQL (see
docs/operations.md#storage-layout)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import tuple_row

from pikku_storage._locks import LockName
from pikku_storage.clock import Clock
from pikku_storage.codec import JsonValue, decode, decode_optional
from pikku_storage.errors import (
    ConflictError,
    InvalidValue,
    RunNotFound,
    StepFunctionMismatch,
    StepNotFound,
)
from pikku_storage.interfaces.workflows import (
    ACTIVE_STATUSES,
    GraphStep,
    NewRun,
    NewStep,
    StepChange,
    WorkflowRunService,
    WorkflowService,
)
from pikku_storage.postgres import _rows
from pikku_storage.postgres import _sql_workflows as q
from pikku_storage.postgres._connection import (
    DEFAULT_SCHEMA,
    Conn,
    PgDatabase,
    PgPool,
    Row,
    check_lock_url,
    execute,
    fetch_all,
    fetch_one,
    one_trip,
)
from pikku_storage.postgres._errors import (
    is_foreign_key_violation,
    is_out_of_range,
    is_unique_violation,
)
from pikku_storage.postgres._keyset import after_bound
from pikku_storage.postgres._locks import PgLocks
from pikku_storage.postgres._statements import Statement, compose_statements
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

__all__ = ["PgWorkflowRunService", "PgWorkflowService"]


@dataclass(frozen=True, slots=True)
class _Statements:
    """The templates of `_sql_workflows`, composed once for one schema."""

    create_run: Statement
    get_run: Statement
    lock_run: Statement
    lock_run_of_step: Statement
    update_run_status: Statement
    rederive_dispatch: Statement
    update_run_state: Statement
    get_run_state: Statement
    insert_step: Statement
    get_step_state: Statement
    set_step: Statement
    claim_step: Statement
    create_retry_attempt: Statement
    claim_for_execution: Statement
    set_step_child_run_id: Statement
    get_step_instances: Statement
    find_stalled_runs: Statement
    find_stalled_runs_after: Statement
    find_undispatched_steps: Statement
    find_undispatched_steps_after: Statement
    update_version_status: Statement
    graph_steps: Statement
    step_names: Statement
    succeeded_results: Statement
    set_branch_taken: Statement
    upsert_version: Statement
    get_version: Statement
    list_runs: Statement
    list_runs_by_workflow: Statement
    list_runs_by_status: Statement
    list_runs_by_workflow_status: Statement
    count_runs: Statement
    count_runs_by_workflow: Statement
    get_run_steps: Statement
    get_run_history: Statement
    distinct_workflow_names: Statement
    delete_run: Statement
    prune_batch: Statement


class _PgWorkflowReads:
    """Hooks both workflow services share."""

    _db: PgDatabase
    _sql: _Statements

    async def _init(self) -> None:
        await self._db.open()

    async def _close(self) -> None:
        await self._db.close()

    async def _get_run(self, run_id: str) -> WorkflowRun | None:
        async def body(conn: Conn) -> WorkflowRun | None:
            row = await fetch_one(conn, self._sql.get_run, {"run_id": run_id})
            return None if row is None else _rows.workflow_runs([row])[0]

        return await self._db.run(body)

    async def _get_run_history(self, run_id: str) -> list[StepHistoryEntry]:
        async def body(conn: Conn) -> list[StepHistoryEntry]:
            rows = await fetch_all(conn, self._sql.get_run_history, {"run_id": run_id})
            return [_rows.history_entry(row) for row in rows]

        return await self._db.run(body)

    async def _get_workflow_version(self, name: str, graph_hash: str) -> WorkflowVersion | None:
        async def body(conn: Conn) -> WorkflowVersion | None:
            params = {"name": name, "graph_hash": graph_hash}
            row = await fetch_one(conn, self._sql.get_version, params)
            return None if row is None else _rows.workflow_version(row)

        return await self._db.run(body)


def _transition_params(step_id: str, change: StepChange, now: datetime) -> dict[str, object]:
    result, error = change.outcome if change.outcome is not None else (None, None)
    return {
        "step_id": step_id,
        "status": change.status.value,
        "active": change.status in ACTIVE_STATUSES,
        "pending": change.status is StepStatus.PENDING,
        "set_outcome": change.outcome is not None,
        "result": result,
        "error": error,
        "stamp_running": change.stamp == "running_at",
        "stamp_scheduled": change.stamp == "scheduled_at",
        "stamp_succeeded": change.stamp == "succeeded_at",
        "stamp_failed": change.stamp == "failed_at",
        "now": now,
    }


class PgWorkflowService(_PgWorkflowReads, WorkflowService):
    """`WorkflowService` on PostgreSQL; locks are session advisory locks
    (docs/operations.md#storage-layout).

    `pool` is a DSN (the service owns a pool of its own) or an `AsyncConnectionPool` it borrows.
    Each held lock has a connection of its own outside the pool (to `lock_url` when given, which
    behind PgBouncer must be a direct connection: `init()` refuses a pooled one).
    """

    def __init__(
        self,
        pool: str | PgPool,
        *,
        schema: str = DEFAULT_SCHEMA,
        clock: Clock | None = None,
        lock_url: str | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._db = PgDatabase(pool, schema)
        self._sql = compose_statements(_Statements, self._db, q, q.WORKFLOW_TABLES)
        self._locks = PgLocks(self._db, check_lock_url(lock_url))

    async def _init(self) -> None:
        await self._db.open()
        await self._locks.open()

    async def _close(self) -> None:
        await self._locks.close()
        await self._db.close()

    async def _create_run(self, run: NewRun) -> None:
        params = {
            "run_id": run.run_id,
            "workflow": run.workflow,
            "input": run.input,
            "inline": run.inline,
            "graph_hash": run.graph_hash,
            "wire": run.wire,
            "now": run.now,
            "deterministic": run.deterministic,
            "planned_steps": run.planned_steps,
        }

        async def body(conn: Conn) -> None:
            await execute(conn, self._sql.create_run, params)

        await self._db.run(body)

    async def _update_run_status(
        self,
        run_id: str,
        status: WorkflowStatus,
        output: str | None,
        error: str | None,
        now: datetime,
    ) -> None:
        params = {
            "run_id": run_id,
            "status": status.value,
            "output": output,
            "error": error,
            "now": now,
            "running": status is WorkflowStatus.RUNNING,
        }

        async def body(conn: Conn) -> int:
            # the run row first (the lock every step write takes), then its pending steps
            async with one_trip(conn):
                run = conn.cursor(row_factory=tuple_row)
                await run.execute(self._sql.update_run_status, params)
                await execute(conn, self._sql.rederive_dispatch, params)
            return run.rowcount

        if await self._db.run(body) == 0:
            raise RunNotFound(run_id)

    async def _update_run_state(self, run_id: str, name: str, value: str, now: datetime) -> None:
        params = {"run_id": run_id, "name": name, "value": value, "now": now}

        async def body(conn: Conn) -> int:
            return await execute(conn, self._sql.update_run_state, params)

        if await self._db.run(body) == 0:
            raise RunNotFound(run_id)

    async def _get_run_state(self, run_id: str) -> dict[str, JsonValue]:
        async def body(conn: Conn) -> dict[str, JsonValue]:
            rows = await fetch_all(conn, self._sql.get_run_state, {"run_id": run_id})
            return {name: decode(value) for name, value in rows}

        return await self._db.run(body)

    async def _insert_step_state(self, step: NewStep) -> StepState:
        params = {
            "step_id": step.step_id,
            "run_id": step.run_id,
            "step_name": step.step_name,
            "rpc_name": step.rpc_name,
            "data": step.data,
            "retries": step.retries,
            "retry_delay": step.retry_delay,
            "now": step.now,
            "from_step_name": step.from_step_name,
        }

        async def body(conn: Conn) -> int:
            return await execute(conn, self._sql.insert_step, params)

        try:
            inserted = await self._db.run(body)
        except Exception as exc:
            if is_foreign_key_violation(exc):
                raise RunNotFound(step.run_id) from exc
            if is_unique_violation(exc):
                raise ConflictError.step(step.run_id, step.step_name) from exc
            if is_out_of_range(exc):  # the spec sets no bound; the int column does
                raise InvalidValue(f"retries is too large for PostgreSQL: {step.retries}") from exc
            raise
        if inserted == 0:
            raise RunNotFound(step.run_id)
        return step.initial_state()

    async def _get_step_state(self, run_id: str, step_name: str) -> StepState | None:
        async def body(conn: Conn) -> StepState | None:
            params = {"run_id": run_id, "step_name": step_name}
            row = await fetch_one(conn, self._sql.get_step_state, params)
            return None if row is None else _rows.step_state(row)

        return await self._db.run(body)

    async def _step_write(self, statement: Statement, params: Mapping[str, object]) -> Row:
        """One step write: its run row locked first, then `statement` (one row back) in the
        same transaction and round trip (docs/operations.md#storage-layout)."""

        async def body(conn: Conn) -> Row:
            async with one_trip(conn):
                await execute(conn, self._sql.lock_run_of_step, params)
                cur = conn.cursor(row_factory=tuple_row)
                await cur.execute(statement, params)
            row = await cur.fetchone()
            assert row is not None
            return row

        return await self._db.run(body)

    async def _set_step(self, step_id: str, change: StepChange, now: datetime) -> None:
        row = await self._step_write(self._sql.set_step, _transition_params(step_id, change, now))
        if row[0] == 0:
            raise StepNotFound.by_id(step_id)

    async def _claim_step(self, step_id: str, now: datetime) -> StepState | None:
        row = await self._step_write(self._sql.claim_step, {"step_id": step_id, "now": now})
        found, state = _rows.claimed_step(row)
        if not found:
            raise StepNotFound.by_id(step_id)
        return state

    async def _create_retry_attempt(
        self, step_id: str, status: StepStatus, now: datetime
    ) -> StepState:
        params = {
            "step_id": step_id,
            "status": status.value,
            "running": status is StepStatus.RUNNING,
            "now": now,
        }

        async def body(conn: Conn) -> StepState | None:
            async with one_trip(conn):
                await execute(conn, self._sql.lock_run_of_step, params)
                cur = conn.cursor(row_factory=tuple_row)
                await cur.execute(self._sql.create_retry_attempt, params)
            row = await cur.fetchone()
            return None if row is None else _rows.step_state(row)

        state = await self._db.run(body)
        if state is None:
            raise StepNotFound.by_id(step_id)
        return state

    async def _claim_step_for_execution(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        max_attempts: int | None,
        now: datetime,
    ) -> StepState | None:
        params = {
            "run_id": run_id,
            "step_name": step_name,
            "rpc_name": rpc_name,
            "max_attempts": max_attempts,
            "now": now,
        }

        async def body(conn: Conn) -> Row:
            async with one_trip(conn):
                await execute(conn, self._sql.lock_run, params)
                cur = conn.cursor(row_factory=tuple_row)
                await cur.execute(self._sql.claim_for_execution, params)
            row = await cur.fetchone()
            assert row is not None
            return row

        found, matches, *claimed = await self._db.run(body)
        if not found:
            raise StepNotFound.by_name(run_id, step_name)
        if not matches:
            raise StepFunctionMismatch(run_id, step_name)
        return _rows.claimed_step((True, *claimed))[1]

    async def _set_step_child_run_id(self, step_id: str, child_run_id: str, now: datetime) -> None:
        params = {"step_id": step_id, "child_run_id": child_run_id, "now": now}
        row = await self._step_write(self._sql.set_step_child_run_id, params)
        if row[0] == 0:
            raise StepNotFound.by_id(step_id)

    async def _get_step_instances(self, run_id: str) -> list[StepInstance]:
        async def body(conn: Conn) -> list[StepInstance]:
            rows = await fetch_all(conn, self._sql.get_step_instances, {"run_id": run_id})
            return [_rows.step_instance(row) for row in rows]

        return await self._db.run(body)

    async def _find_stalled_runs(
        self, older_than: datetime, limit: int, after: StalledRun | None
    ) -> list[StalledRun]:
        query, params = self._sweep(
            self._sql.find_stalled_runs,
            self._sql.find_stalled_runs_after,
            older_than,
            limit,
            None if after is None else (after.idle_since, after.run_id),
        )

        async def body(conn: Conn) -> list[StalledRun]:
            return [_rows.stalled_run(row) for row in await fetch_all(conn, query, params)]

        return await self._db.run(body)

    async def _find_undispatched_steps(
        self, older_than: datetime, limit: int, after: UndispatchedStep | None
    ) -> list[UndispatchedStep]:
        query, params = self._sweep(
            self._sql.find_undispatched_steps,
            self._sql.find_undispatched_steps_after,
            older_than,
            limit,
            None if after is None else (after.pending_since, after.step_id),
        )

        async def body(conn: Conn) -> list[UndispatchedStep]:
            return [_rows.undispatched_step(row) for row in await fetch_all(conn, query, params)]

        return await self._db.run(body)

    @staticmethod
    def _sweep(
        first: Statement,
        later: Statement,
        older_than: datetime,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> tuple[Statement, dict[str, object]]:
        """A sweeper's statement and parameters: its first page, or the page after a cursor
        turned into a UUID keyset bound (`_keyset`)."""
        params: dict[str, object] = {"older_than": older_than, "limit": limit}
        bound = None if after is None else after_bound(*after)
        if bound is None:
            return first, params
        params["after_at"], params["after_id"] = bound
        return later, params

    async def _get_graph_steps(self, run_id: str) -> list[GraphStep]:
        async def body(conn: Conn) -> list[GraphStep]:
            rows = await fetch_all(conn, self._sql.graph_steps, {"run_id": run_id})
            return [_rows.graph_step(row) for row in rows]

        return await self._db.run(body)

    async def _get_step_names(self, run_id: str, names: list[str]) -> set[str]:
        async def body(conn: Conn) -> set[str]:
            params = {"run_id": run_id, "names": names}
            return {row[0] for row in await fetch_all(conn, self._sql.step_names, params)}

        return await self._db.run(body)

    async def _get_succeeded_results(self, run_id: str, names: list[str]) -> dict[str, JsonValue]:
        async def body(conn: Conn) -> dict[str, JsonValue]:
            params = {"run_id": run_id, "names": names}
            rows = await fetch_all(conn, self._sql.succeeded_results, params)
            found = {name: decode_optional(result) for name, result in rows}
            return {name: found[name] for name in names if name in found}

        return await self._db.run(body)

    async def _set_branch_taken(self, step_id: str, branch_key: str, now: datetime) -> None:
        params = {"step_id": step_id, "branch_key": branch_key, "now": now}
        row = await self._step_write(self._sql.set_branch_taken, params)
        if row[0] == 0:
            raise StepNotFound.by_id(step_id)

    async def _upsert_workflow_version(
        self,
        name: str,
        graph_hash: str,
        graph: str,
        source: str,
        status: WorkflowVersionStatus,
        now: datetime,
    ) -> bool:
        params = {
            "name": name,
            "graph_hash": graph_hash,
            "graph": graph,
            "source": source,
            "status": status.value,
            "now": now,
        }

        async def body(conn: Conn) -> int:
            return await execute(conn, self._sql.upsert_version, params)

        return await self._db.run(body) == 1

    async def _update_workflow_version_status(
        self, name: str, graph_hash: str, status: WorkflowVersionStatus, now: datetime
    ) -> bool:
        params = {"name": name, "graph_hash": graph_hash, "status": status.value}

        async def body(conn: Conn) -> int:
            return await execute(conn, self._sql.update_version_status, params)

        return await self._db.run(body) == 1

    def _lock(self, name: LockName, timeout: float | None) -> AbstractAsyncContextManager[None]:
        return self._locks.lock(name, timeout)


class PgWorkflowRunService(_PgWorkflowReads, WorkflowRunService):
    """`WorkflowRunService` on PostgreSQL: index-ordered console reads, delete and prune."""

    def __init__(
        self, pool: str | PgPool, *, schema: str = DEFAULT_SCHEMA, clock: Clock | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._db = PgDatabase(pool, schema)
        self._sql = compose_statements(_Statements, self._db, q, q.WORKFLOW_TABLES)

    async def _list_runs(
        self, workflow_name: str | None, status: WorkflowStatus | None, limit: int, offset: int
    ) -> list[WorkflowRun]:
        if workflow_name is None:
            query = self._sql.list_runs if status is None else self._sql.list_runs_by_status
        elif status is None:
            query = self._sql.list_runs_by_workflow
        else:
            query = self._sql.list_runs_by_workflow_status
        params = {
            "workflow": workflow_name,
            "status": None if status is None else status.value,
            "limit": limit,
            "offset": offset,
        }

        async def body(conn: Conn) -> list[WorkflowRun]:
            return _rows.workflow_runs(await fetch_all(conn, query, params))

        return await self._db.run(body)

    async def _count_runs(self, workflow_name: str | None) -> dict[WorkflowStatus, int]:
        if workflow_name is None:
            query, params = self._sql.count_runs, None
        else:
            query, params = self._sql.count_runs_by_workflow, {"workflow": workflow_name}

        async def body(conn: Conn) -> dict[WorkflowStatus, int]:
            row = await fetch_one(conn, query, params)
            assert row is not None  # a SELECT without FROM always yields its one row
            # the columns follow WorkflowStatus (_sql_workflows.COUNT_RUNS)
            return {s: int(n) for s, n in zip(WorkflowStatus, row, strict=True)}

        return await self._db.run(body)

    async def _get_run_steps(self, run_id: str) -> list[RunStep]:
        async def body(conn: Conn) -> list[RunStep]:
            rows = await fetch_all(conn, self._sql.get_run_steps, {"run_id": run_id})
            return [_rows.run_step(row) for row in rows]

        return await self._db.run(body)

    async def _get_distinct_workflow_names(self) -> list[str]:
        async def body(conn: Conn) -> list[str]:
            rows = await fetch_all(conn, self._sql.distinct_workflow_names)
            return sorted(row[0] for row in rows)

        return await self._db.run(body)

    async def _delete_run(self, run_id: str) -> bool:
        async def body(conn: Conn) -> int:
            return await execute(conn, self._sql.delete_run, {"run_id": run_id})

        return await self._db.run(body) == 1

    async def _prune_runs(
        self, cutoff: datetime, statuses: tuple[WorkflowStatus, ...], batch_size: int
    ) -> int:
        deleted = 0
        for status in statuses:
            params = {"status": status.value, "cutoff": cutoff, "batch_size": batch_size}

            async def body(conn: Conn, params: Mapping[str, object] = params) -> tuple[int, int]:
                row = await fetch_one(conn, self._sql.prune_batch, params)
                assert row is not None
                return int(row[0]), int(row[1])

            while True:
                picked, gone = await self._db.run(body)
                deleted += gone
                if picked < batch_size:
                    break
        return deleted
