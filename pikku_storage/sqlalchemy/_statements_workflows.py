"""The workflow tables' prebuilt statements (runs, steps, markers, claims, sweeps).

Built on first use per namespace with `p_` bind parameters, as `_statements.py` explains;
`Statements` inherits them (see docs/operations.md#storage-layout).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Final

from sqlalchemy import Insert, Select, Update, and_, bindparam, case, func, literal, or_, select
from sqlalchemy.engine import Dialect

from pikku_storage._ids import is_canonical_uuid
from pikku_storage.records import StepStatus, WorkflowStatus
from pikku_storage.sqlalchemy._dialects import DialectOps
from pikku_storage.sqlalchemy._schema import Tables

__all__ = ["ACTIVE", "RUN_RECORD_COLUMNS", "WorkflowStatements"]

ACTIVE: Final = frozenset({"running", "scheduled", "suspended"})
"""Step statuses that keep a run busy (spec 05 markers)."""
RUN_RECORD_COLUMNS: Final = (
    "workflow_run_id",
    "workflow",
    "status",
    "input",
    "output",
    "error",
    "inline",
    "graph_hash",
    "wire",
    "created_at",
    "updated_at",
    "deterministic",
    "planned_steps",
)
CLAIMABLE: Final = (StepStatus.PENDING.value, StepStatus.SCHEDULED.value)
"""Statuses `claim_step` turns into `running` (the interfaces' `CLAIMABLE_STATUSES`)."""
STAMPS: Final = ("running_at", "scheduled_at", "succeeded_at", "failed_at")


def _one_of(column: Any, values: Any) -> Any:
    """`column IN (…)` over constants, one bound literal each (no expanding parameter)."""
    return column.in_([literal(value) for value in values])


class WorkflowStatements:
    """The workflow statements of one namespace on one dialect."""

    def __init__(self, tables: Tables, ops: DialectOps, dialect: Dialect) -> None:
        self.t = tables
        self.ops = ops
        self.update_returning = bool(dialect.update_returning)

    # --- workflows ----------------------------------------------------------------------

    @cached_property
    def insert_run(self) -> Insert:
        return self.t.workflow_runs.insert()

    @cached_property
    def run_record(self) -> list[Any]:
        """The columns a `WorkflowRun` is built from (not the sweeper markers nor `seq`)."""
        runs = self.t.workflow_runs
        return [runs.c[name] for name in RUN_RECORD_COLUMNS]

    @cached_property
    def get_run(self) -> Select[Any]:
        runs = self.t.workflow_runs
        return select(*self.run_record).where(runs.c.workflow_run_id == bindparam("p_run_id"))

    @cached_property
    def run_exists_for_share(self) -> Select[Any]:
        runs = self.t.workflow_runs
        return self.ops.for_share(
            select(runs.c.seq).where(runs.c.workflow_run_id == bindparam("p_run_id"))
        )

    @cached_property
    def insert_step(self) -> Insert:
        return self.t.workflow_steps.insert()

    @cached_property
    def insert_history(self) -> Insert:
        return self.t.workflow_history.insert()

    def set_step(self, stamp: str, outcome: bool) -> tuple[Update, Update]:
        """The live step's transition and its current attempt's, for one stamp column."""
        key = (stamp, outcome)
        found = self._set_step.get(key)
        if found is None:
            steps, history = self.t.workflow_steps, self.t.workflow_history
            values: dict[str, Any] = {
                "status": bindparam("p_status"),
                stamp: bindparam("p_now"),
                "updated_at": bindparam("p_now"),
            }
            if outcome:
                values["result"] = bindparam("p_result")
                values["error"] = bindparam("p_error")
            dispatch = bindparam("p_dispatch", type_=steps.c.dispatch_since.type)
            live = (
                steps.update()
                .where(steps.c.workflow_step_id == bindparam("p_step_id"))
                .values(dispatch_since=dispatch, **values)
            )
            # The current attempt, read in the same statement (no SELECT round trip).
            attempt = (
                select(steps.c.attempt_count)
                .where(steps.c.workflow_step_id == bindparam("p_step_id"))
                .scalar_subquery()
            )
            current = (
                history.update()
                .where(
                    history.c.workflow_step_id == bindparam("p_step_id"),
                    history.c.attempt == attempt,
                )
                .values(**values)
            )
            found = self._set_step[key] = (live, current)
        return found

    @cached_property
    def _set_step(self) -> dict[tuple[str, bool], tuple[Update, Update]]:
        return {}

    # --- workflow markers (spec 05) and claims ------------------------------------------

    @cached_property
    def run_of_step(self) -> Select[Any]:
        steps = self.t.workflow_steps
        return select(steps.c.workflow_run_id).where(
            steps.c.workflow_step_id == bindparam("p_step_id")
        )

    @cached_property
    def lock_run(self) -> Select[Any]:
        runs = self.t.workflow_runs
        return self.ops.for_update(
            select(runs.c.status).where(runs.c.workflow_run_id == bindparam("p_run_id"))
        )

    @cached_property
    def lock_step(self) -> Select[Any]:
        steps = self.t.workflow_steps
        return self.ops.for_update(
            select(steps).where(steps.c.workflow_step_id == bindparam("p_step_id"))
        )

    @cached_property
    def step_with_run_status(self) -> Select[Any]:
        """The step row and its run's status in one read (dialects without row locks)."""
        steps, runs = self.t.workflow_steps, self.t.workflow_runs
        return (
            select(steps, runs.c.status.label("run_status"))
            .join(runs, runs.c.workflow_run_id == steps.c.workflow_run_id)
            .where(steps.c.workflow_step_id == bindparam("p_step_id"))
        )

    def _raise_activity(self) -> dict[str, Any]:
        runs = self.t.workflow_runs
        now = bindparam("p_now", type_=runs.c.activity_at.type)
        return {"activity_at": case((runs.c.activity_at < now, now), else_=runs.c.activity_at)}

    @cached_property
    def bump_run(self) -> Update:
        runs = self.t.workflow_runs
        return (
            runs.update()
            .where(runs.c.workflow_run_id == bindparam("p_run_id"))
            .values(
                active_steps=runs.c.active_steps + bindparam("p_delta"), **self._raise_activity()
            )
        )

    @cached_property
    def touch_run_returning(self) -> Update:
        """`activity_at` raised, the row locked and its status returned in one statement."""
        runs = self.t.workflow_runs
        return (
            runs.update()
            .where(runs.c.workflow_run_id == bindparam("p_run_id"))
            .values(**self._raise_activity())
            .returning(runs.c.status)
        )

    @cached_property
    def bump_run_of_step(self) -> Update:
        """The markers of a step write where the transaction already holds the database's
        write lock (SQLite): the step's run found, its `active_steps` moved by the step's
        old versus new activity, `activity_at` raised, its id and status returned."""
        runs, steps = self.t.workflow_runs, self.t.workflow_steps
        this_step = steps.c.workflow_step_id == bindparam("p_step_id")
        was_active = (
            select(case((_one_of(steps.c.status, sorted(ACTIVE)), 1), else_=0))
            .where(this_step)
            .scalar_subquery()
        )
        run_id = select(steps.c.workflow_run_id).where(this_step).scalar_subquery()
        return (
            runs.update()
            .where(runs.c.workflow_run_id == run_id)
            .values(
                active_steps=runs.c.active_steps + bindparam("p_active") - was_active,
                **self._raise_activity(),
            )
            .returning(runs.c.workflow_run_id, runs.c.status)
        )

    @cached_property
    def redispatch(self) -> Update:
        """Re-derive `dispatch_since` of a run's pending steps after its status changed."""
        steps = self.t.workflow_steps
        return (
            steps.update()
            .where(
                steps.c.workflow_run_id == bindparam("p_run_id"),
                steps.c.status == StepStatus.PENDING.value,
            )
            .values(
                dispatch_since=case((bindparam("p_running") == 1, steps.c.updated_at), else_=None)
            )
        )

    @cached_property
    def list_runs(self) -> dict[tuple[bool, bool], Select[Any]]:
        runs = self.t.workflow_runs
        found: dict[tuple[bool, bool], Select[Any]] = {}
        for by_name in (False, True):
            for by_status in (False, True):
                query = select(*self.run_record)
                if by_name:
                    query = query.where(runs.c.workflow == bindparam("p_workflow"))
                if by_status:
                    query = query.where(runs.c.status == bindparam("p_status"))
                found[by_name, by_status] = (
                    query.order_by(runs.c.created_at.desc(), runs.c.seq.desc())
                    .limit(bindparam("p_limit", literal_execute=False))
                    .offset(bindparam("p_offset", literal_execute=False))
                )
        return found

    # --- claims and retries ---------------------------------------------------------------

    @cached_property
    def step_by_id(self) -> Select[Any]:
        steps = self.t.workflow_steps
        return select(steps).where(steps.c.workflow_step_id == bindparam("p_step_id"))

    @cached_property
    def claim_step(self) -> Update:
        """A pending or scheduled step made `running` (zero rows: not claimable)."""
        steps = self.t.workflow_steps
        return (
            steps.update()
            .where(
                steps.c.workflow_step_id == bindparam("p_step_id"),
                _one_of(steps.c.status, CLAIMABLE),
            )
            .values(
                status=StepStatus.RUNNING.value,
                running_at=bindparam("p_now"),
                updated_at=bindparam("p_now"),
                dispatch_since=None,
            )
        )

    def update_attempt(self, columns: tuple[str, ...]) -> Update:
        """The step's attempt `p_attempt` with `columns` set from `p_<column>`."""
        found = self._update_attempt.get(columns)
        if found is None:
            history = self.t.workflow_history
            found = self._update_attempt[columns] = (
                history.update()
                .where(
                    history.c.workflow_step_id == bindparam("p_step_id"),
                    history.c.attempt == bindparam("p_attempt"),
                )
                .values({name: bindparam(f"p_{name}") for name in columns})
            )
        return found

    @cached_property
    def _update_attempt(self) -> dict[tuple[str, ...], Update]:
        return {}

    @cached_property
    def retry_step(self) -> Update:
        """The step's next attempt: counter up, outcome, child and stamps cleared."""
        steps = self.t.workflow_steps
        return (
            steps.update()
            .where(steps.c.workflow_step_id == bindparam("p_step_id"))
            .values(
                attempt_count=steps.c.attempt_count + 1,
                status=bindparam("p_status"),
                result=None,
                error=None,
                child_run_id=None,
                dispatch_since=bindparam("p_dispatch", type_=steps.c.dispatch_since.type),
                updated_at=bindparam("p_now"),
                running_at=bindparam("p_running_at", type_=steps.c.running_at.type),
                scheduled_at=None,
                succeeded_at=None,
                failed_at=None,
            )
        )

    @cached_property
    def step_by_name(self) -> Select[Any]:
        steps = self.t.workflow_steps
        return select(steps).where(
            steps.c.workflow_run_id == bindparam("p_run_id"),
            steps.c.step_name == bindparam("p_step_name"),
        )

    @cached_property
    def lock_step_by_name(self) -> Select[Any]:
        return self.ops.for_update(self.step_by_name)

    def claim_for_execution(self, budget: bool) -> Update:
        """One conditional write (`budget`: failed steps below `p_max_attempts` only):
        pending/scheduled become running as `claim_step` does; a failed step gets its next
        attempt, running, as `create_retry_attempt` does."""
        found = self._claim_for_execution.get(budget)
        if found is not None:
            return found
        steps = self.t.workflow_steps
        failed = steps.c.status == StepStatus.FAILED.value
        retry = (
            and_(failed, steps.c.attempt_count < bindparam("p_max_attempts")) if budget else failed
        )

        def reset(column: Any) -> Any:
            return case((failed, None), else_=column)

        now = bindparam("p_now", type_=steps.c.updated_at.type)
        found = self._claim_for_execution[budget] = (
            steps.update()
            .where(
                steps.c.workflow_run_id == bindparam("p_run_id"),
                steps.c.step_name == bindparam("p_step_name"),
                steps.c.rpc_name.is_not_distinct_from(
                    bindparam("p_rpc", type_=steps.c.rpc_name.type)
                ),
                or_(_one_of(steps.c.status, CLAIMABLE), retry),
            )
            # MySQL assigns left to right: `status` goes last, after the CASEs reading it.
            .ordered_values(
                (
                    steps.c.attempt_count,
                    case((failed, steps.c.attempt_count + 1), else_=steps.c.attempt_count),
                ),
                (steps.c.result, reset(steps.c.result)),
                (steps.c.error, reset(steps.c.error)),
                (steps.c.child_run_id, reset(steps.c.child_run_id)),
                (steps.c.scheduled_at, reset(steps.c.scheduled_at)),
                (steps.c.succeeded_at, reset(steps.c.succeeded_at)),
                (steps.c.failed_at, reset(steps.c.failed_at)),
                (steps.c.running_at, now),
                (steps.c.updated_at, now),
                (steps.c.dispatch_since, None),
                (steps.c.status, StepStatus.RUNNING.value),
            )
        )
        return found

    @cached_property
    def count_runs(self) -> dict[bool, Select[Any]]:
        """One row, a column per status named by its value: a `count(*)` subquery per status,
        each a range of `(status, …)` or, by workflow, `(workflow, status, …)` (index only)."""
        runs = self.t.workflow_runs
        found: dict[bool, Select[Any]] = {}
        for by_name in (False, True):
            counts = []
            for status in WorkflowStatus:
                count = select(func.count()).select_from(runs).where(runs.c.status == status.value)
                if by_name:
                    count = count.where(runs.c.workflow == bindparam("p_workflow"))
                counts.append(count.scalar_subquery().label(status.value))
            found[by_name] = select(*counts)
        return found

    @cached_property
    def _claim_for_execution(self) -> dict[bool, Update]:
        return {}

    # --- sweeps ---------------------------------------------------------------------------

    def _after(self, at_column: Any, id_column: Any, id_: str) -> Any:
        """Strictly after the cursor `(p_after_at, p_after_id)` in `(at_column, id_column)`
        order, the keyset spelled out (MySQL has no row-comparison plan)."""
        at = bindparam("p_after_at", type_=at_column.type)
        return or_(
            at_column > at,
            and_(at_column == at, self.ops.id_key(id_column, id_) > bindparam("p_after_id")),
        )

    def stalled_runs(self, after: str | None) -> Select[Any]:
        """Running runs with no active step, idle since before `p_older`, after the cursor
        whose run id is `after` (its kind picks the comparison), `p_limit` of them."""
        key = None if after is None else is_canonical_uuid(after)
        found = self._stalled.get(key)
        if found is None:
            runs = self.t.workflow_runs
            query: Select[Any] = select(
                runs.c.workflow_run_id, runs.c.workflow, runs.c.activity_at
            ).where(
                runs.c.status == WorkflowStatus.RUNNING.value,
                runs.c.active_steps == 0,
                runs.c.activity_at < bindparam("p_older", type_=runs.c.activity_at.type),
            )
            if after is not None:
                query = query.where(self._after(runs.c.activity_at, runs.c.workflow_run_id, after))
            found = self._stalled[key] = query.order_by(
                runs.c.activity_at, runs.c.workflow_run_id
            ).limit(bindparam("p_limit", literal_execute=False))
        return found

    @cached_property
    def _stalled(self) -> dict[bool | None, Select[Any]]:
        return {}

    def undispatched_steps(self, after: str | None) -> Select[Any]:
        """Pending steps of running runs waiting since before `p_older`, after the cursor
        whose step id is `after`, `p_limit` of them."""
        key = None if after is None else is_canonical_uuid(after)
        found = self._undispatched.get(key)
        if found is None:
            steps = self.t.workflow_steps
            since = steps.c.dispatch_since
            query: Select[Any] = select(
                steps.c.workflow_run_id,
                steps.c.workflow_step_id,
                steps.c.step_name,
                steps.c.rpc_name,
                since,
            ).where(since.is_not(None), since < bindparam("p_older", type_=since.type))
            if after is not None:
                query = query.where(self._after(since, steps.c.workflow_step_id, after))
            found = self._undispatched[key] = query.order_by(since, steps.c.workflow_step_id).limit(
                bindparam("p_limit", literal_execute=False)
            )
        return found

    @cached_property
    def _undispatched(self) -> dict[bool | None, Select[Any]]:
        return {}
