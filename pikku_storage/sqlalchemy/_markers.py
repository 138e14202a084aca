"""The sweeper markers of a run and its steps, kept inside each workflow write.

A run keeps `active_steps` (its steps `running`, `scheduled` or `suspended`) and `activity_at`
(the latest `updated_at` of the run and its steps); a step keeps `dispatch_since` (its
`updated_at` while `pending` in a `running` run, else NULL). Every step write locks the run
row first, then the step row, so step writes and run status changes cannot deadlock
(docs/operations.md#storage-layout).
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any, Final

from sqlalchemy import Select, Update, bindparam, case, select
from sqlalchemy.engine import Connection

from pikku_storage.errors import StepNotFound
from pikku_storage.records import StepStatus, WorkflowStatus
from pikku_storage.sqlalchemy._dialects import DialectOps
from pikku_storage.sqlalchemy._schema import Tables

__all__ = ["ACTIVE", "Markers", "active", "dispatch_since"]

ACTIVE: Final = frozenset({"running", "scheduled", "suspended"})
_RUNNING: Final = WorkflowStatus.RUNNING.value


def active(status: str | StepStatus) -> int:
    """1 when a step in `status` keeps its run busy, else 0."""
    return 1 if str(getattr(status, "value", status)) in ACTIVE else 0


def dispatch_since(status: str | StepStatus, run_status: str, now: datetime) -> datetime | None:
    """A step's `dispatch_since` after a write at `now` leaving it in `status`."""
    pending = str(getattr(status, "value", status)) == StepStatus.PENDING.value
    return now if pending and run_status == _RUNNING else None


class Markers:
    """The marker statements of one namespace, built on first use."""

    def __init__(self, tables: Tables, ops: DialectOps) -> None:
        self.t = tables
        self.ops = ops

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
    def bump_run(self) -> Update:
        runs = self.t.workflow_runs
        now = bindparam("p_now", type_=runs.c.activity_at.type)
        return (
            runs.update()
            .where(runs.c.workflow_run_id == bindparam("p_run_id"))
            .values(
                active_steps=runs.c.active_steps + bindparam("p_delta"),
                activity_at=case((runs.c.activity_at < now, now), else_=runs.c.activity_at),
            )
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

    def lock_run_status(self, conn: Connection, run_id: str) -> str | None:
        """Lock the run row; its status, or `None` when there is no such run."""
        found = conn.execute(self.lock_run, {"p_run_id": run_id}).scalar_one_or_none()
        return None if found is None else str(found)

    def lock_step_of(self, conn: Connection, step_id: str) -> tuple[str, Any]:
        """Lock the step's run row, then the step row: (run status, step row).

        Raises `StepNotFound.by_id` for an unknown step.
        """
        params = {"p_step_id": step_id}
        run_id = conn.execute(self.run_of_step, params).scalar_one_or_none()
        run_status = None if run_id is None else self.lock_run_status(conn, str(run_id))
        row = None if run_status is None else conn.execute(self.lock_step, params).first()
        if run_status is None or row is None:
            raise StepNotFound.by_id(step_id)
        return run_status, row

    def bump(self, conn: Connection, run_id: str, delta: int, now: datetime) -> None:
        """Adjust the run's `active_steps` by `delta` and raise its `activity_at` to `now`."""
        conn.execute(self.bump_run, {"p_run_id": run_id, "p_delta": delta, "p_now": now})
