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

from sqlalchemy import Delete, Insert, Select, Update, bindparam, select

from pikku_storage.records import StepStatus
from pikku_storage.sqlalchemy._statements_workflows import ACTIVE, WorkflowStatements

__all__ = ["ACTIVE", "Statements"]

SMALL_IN: Final = 8
_STAMPS = ("running_at", "scheduled_at", "succeeded_at", "failed_at")


class Statements(WorkflowStatements):
    """Prebuilt statements of one namespace on one dialect (the workflow ones inherited)."""

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
