"""The sweeper markers of a run and its steps, kept inside each workflow write.

A run keeps `active_steps` (its steps `running`, `scheduled` or `suspended`) and `activity_at`
(the latest `updated_at` of the run and its steps); a step keeps `dispatch_since` (its
`updated_at` while `pending` in a `running` run, else NULL). Every step write locks the run
row first, then the step row, so step writes and run status changes cannot deadlock; where
the transaction already holds the database's write lock (SQLite `BEGIN IMMEDIATE`) the
markers move in one statement instead (docs/operations.md#storage-layout). The statements are
the namespace's prebuilt ones (`Statements`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from sqlalchemy.engine import Connection

from pikku_storage.errors import StepNotFound
from pikku_storage.records import StepStatus, WorkflowStatus
from pikku_storage.sqlalchemy._dialects import DialectOps
from pikku_storage.sqlalchemy._statements import ACTIVE, Statements

__all__ = ["ACTIVE", "Markers", "active", "dispatch_since"]

_RUNNING: Final = WorkflowStatus.RUNNING.value
STEP_RUNS_CACHED: Final = 10_000  # step id -> run id entries kept (the map never changes)

Execute = Callable[[Connection, Any, Any], Any]


def active(status: str | StepStatus) -> int:
    """1 when a step in `status` keeps its run busy, else 0."""
    return 1 if str(getattr(status, "value", status)) in ACTIVE else 0


def dispatch_since(status: str | StepStatus, run_status: str, now: datetime) -> datetime | None:
    """A step's `dispatch_since` after a write at `now` leaving it in `status`."""
    pending = str(getattr(status, "value", status)) == StepStatus.PENDING.value
    return now if pending and run_status == _RUNNING else None


class Markers:
    """The marker logic of one namespace, on its prebuilt statements."""

    def __init__(self, statements: Statements, ops: DialectOps, execute: Execute) -> None:
        self.s = statements
        self.ops = ops
        self.execute = execute
        # A step's run never changes (01 §2 allows caching this map); bounded, oldest out.
        self._run_of: OrderedDict[str, str] = OrderedDict()

    def remember(self, step_id: str, run_id: str) -> None:
        """Note the step's run (a step this process inserted or read)."""
        cache = self._run_of
        cache[step_id] = run_id
        if len(cache) > STEP_RUNS_CACHED:
            cache.popitem(last=False)

    def lock_run_status(self, conn: Connection, run_id: str) -> str | None:
        """Lock the run row; its status, or `None` when there is no such run."""
        found = self.execute(conn, self.s.lock_run, {"p_run_id": run_id}).scalar_one_or_none()
        return None if found is None else str(found)

    def touch_run(self, conn: Connection, run_id: str, now: datetime) -> str | None:
        """Lock the run row and raise its `activity_at` to `now`: its status, or `None` when
        there is no such run (a new step: `active_steps` does not move)."""
        if self.s.update_returning:
            params = {"p_run_id": run_id, "p_now": now}
            found = self.execute(conn, self.s.touch_run_returning, params).scalar_one_or_none()
            return None if found is None else str(found)
        status = self.lock_run_status(conn, run_id)
        if status is not None:
            self.bump(conn, run_id, 0, now)
        return status

    def lock_step_of(self, conn: Connection, step_id: str) -> tuple[str, Any]:
        """Lock the step's run row, then the step row: (run status, step row).

        Raises `StepNotFound.by_id` for an unknown step.
        """
        params = {"p_step_id": step_id}
        if not self.ops.row_locks:  # the write lock is the database's: one read
            row = self.execute(conn, self.s.step_with_run_status, params).first()
            if row is None:
                raise StepNotFound.by_id(step_id)
            return str(row.run_status), row
        run_id = self._run_of.get(step_id)
        if run_id is None:
            found = self.execute(conn, self.s.run_of_step, params).scalar_one_or_none()
            run_id = None if found is None else str(found)
        run_status = None if run_id is None else self.lock_run_status(conn, run_id)
        row = None if run_status is None else self.execute(conn, self.s.lock_step, params).first()
        if run_status is None or row is None:
            raise StepNotFound.by_id(step_id)
        self.remember(step_id, str(row.workflow_run_id))
        return run_status, row

    def step_write(
        self, conn: Connection, step_id: str, status: StepStatus, now: datetime
    ) -> tuple[str, str]:
        """Markers of a step write leaving the step in `status`, before the step's own
        statements: (run id, run status). Raises `StepNotFound.by_id` for an unknown step."""
        if not self.ops.row_locks and self.s.update_returning:
            params = {"p_step_id": step_id, "p_active": active(status), "p_now": now}
            row = self.execute(conn, self.s.bump_run_of_step, params).first()
            if row is None:
                raise StepNotFound.by_id(step_id)
            return str(row.workflow_run_id), str(row.status)
        run_status, old = self.lock_step_of(conn, step_id)
        run_id = str(old.workflow_run_id)
        self.bump(conn, run_id, active(status) - active(old.status), now)
        return run_id, run_status

    def bump(self, conn: Connection, run_id: str, delta: int, now: datetime) -> None:
        """Adjust the run's `active_steps` by `delta` and raise its `activity_at` to `now`."""
        params = {"p_run_id": run_id, "p_delta": delta, "p_now": now}
        self.execute(conn, self.s.bump_run, params)

    def redispatch(self, conn: Connection, run_id: str, running: bool) -> None:
        """Re-derive the run's pending steps' `dispatch_since` after its status changed."""
        params = {"p_run_id": run_id, "p_running": int(running)}
        self.execute(conn, self.s.redispatch, params)
