"""The hot paths' statements, built once per namespace with bind parameters.

Building a Core expression per call costs more than SQLAlchemy's compiled-cache lookup it
feeds; these are built on first use and reused with a parameter dict, so a call pays only the
cache hit. Names of bind parameters start with `p_` so they never clash with a column name
(see docs/operations.md#storage-layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, Final

from sqlalchemy import Delete, Insert, Select, Update, bindparam, case, literal, select
from sqlalchemy.engine import Dialect

from pikku_storage.records import StepStatus
from pikku_storage.sqlalchemy._dialects import DialectOps
from pikku_storage.sqlalchemy._schema import Tables

__all__ = ["Statements"]

SMALL_IN: Final = 8
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
_STAMPS = ("running_at", "scheduled_at", "succeeded_at", "failed_at")


class Statements:
    """Prebuilt statements of one namespace on one dialect."""

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
            select(case((steps.c.status.in_([literal(a) for a in sorted(ACTIVE)]), 1), else_=0))
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

    # --- AI -------------------------------------------------------------------------------

    @cached_property
    def bump_thread(self) -> Update:
        threads = self.t.ai_threads
        return (
            threads.update()
            .where(threads.c.id == bindparam("p_thread_id"))
            .values(
                message_seq=threads.c.message_seq + bindparam("p_count"),
                updated_at=bindparam("p_now"),
            )
        )

    @cached_property
    def bump_thread_returning(self) -> Update:
        return self.bump_thread.returning(self.t.ai_threads.c.message_seq)

    @cached_property
    def thread_message_seq(self) -> Select[Any]:
        threads = self.t.ai_threads
        return select(threads.c.message_seq).where(threads.c.id == bindparam("p_thread_id"))

    def ids_in_thread(self, column: Any, ids: Sequence[str]) -> tuple[Select[Any], dict[str, Any]]:
        """`column` of the thread's rows whose `column` is one of `ids`, and the parameters
        (less `p_thread_id`). Up to `SMALL_IN` ids get one bind parameter each (no expanding
        list to render per call); more use one expanding parameter."""
        n = len(ids) if len(ids) <= SMALL_IN else 0
        key = (column.table.name, n)
        found = self._ids_in_thread.get(key)
        if found is None:
            names: list[Any] = [bindparam(f"p_id{i}") for i in range(n)]
            found = self._ids_in_thread[key] = select(column).where(
                column.table.c.thread_id == bindparam("p_thread_id"),
                column.in_(names) if n else column.in_(bindparam("p_ids", expanding=True)),
            )
        if n:
            return found, {f"p_id{i}": value for i, value in enumerate(ids)}
        return found, {"p_ids": list(ids)}

    @cached_property
    def _ids_in_thread(self) -> dict[tuple[str, int], Select[Any]]:
        return {}

    @cached_property
    def calls_in_range(self) -> Select[Any]:
        calls = self.t.ai_tool_calls
        return (
            select(calls)
            .where(
                calls.c.thread_id == bindparam("p_thread_id"),
                calls.c.message_seq >= bindparam("p_low"),
                calls.c.message_seq <= bindparam("p_high"),
            )
            .order_by(calls.c.message_seq, calls.c.position)
        )

    @cached_property
    def insert_messages(self) -> Insert:
        return self.t.ai_messages.insert()

    @cached_property
    def newest_messages(self) -> Select[Any]:
        m = self.t.ai_messages
        return (
            select(*[c for c in m.c if c.name != "thread_id"])
            .where(m.c.thread_id == bindparam("p_thread_id"))
            .order_by(m.c.created_at.desc(), m.c.seq.desc())
            .limit(bindparam("p_limit"))
        )

    # --- channels and deployments ---------------------------------------------------------

    @cached_property
    def channel_exists_for_share(self) -> Select[Any]:
        channels = self.t.channels
        return self.ops.for_share(
            select(channels.c.channel_id).where(channels.c.channel_id == bindparam("p_channel"))
        )

    @cached_property
    def subscribe(self) -> Insert:
        subs = self.t.channel_subscriptions
        return self.ops.insert_or_ignore(
            subs, {"topic": bindparam("p_topic"), "channel_id": bindparam("p_channel")}
        )

    @cached_property
    def unsubscribe(self) -> Delete:
        subs = self.t.channel_subscriptions
        return subs.delete().where(
            subs.c.topic == bindparam("p_topic"), subs.c.channel_id == bindparam("p_channel")
        )

    @cached_property
    def topic_channels(self) -> Select[Any]:
        subs = self.t.channel_subscriptions
        return (
            select(subs.c.channel_id)
            .where(subs.c.topic == bindparam("p_topic"))
            .order_by(subs.c.channel_id)
        )

    @cached_property
    def heartbeat(self) -> Update:
        deployments = self.t.deployments
        return (
            deployments.update()
            .where(deployments.c.deployment_id == bindparam("p_deployment"))
            .values(last_heartbeat=bindparam("p_now"))
        )

    @cached_property
    def find_function(self) -> Select[Any]:
        deployments, functions = self.t.deployments, self.t.deployment_functions
        return (
            select(deployments)
            .join(functions, functions.c.deployment_id == deployments.c.deployment_id)
            .where(
                functions.c.function_name == bindparam("p_name"),
                deployments.c.last_heartbeat > bindparam("p_cutoff"),
            )
        )


def step_stamps() -> dict[str, None]:
    """Every stamp column empty (a new step or attempt)."""
    return dict.fromkeys(_STAMPS)


PENDING = StepStatus.PENDING.value
