"""Row to record mapping, one function per record type (style §6).

Each function unpacks the column list of its query in `_sql_*.py`, in the same order. JSON
arrives as text and goes through the codec; timestamps are converted to UTC whatever the
session's `TimeZone`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, cast

from pikku_storage import _build
from pikku_storage._serial import (
    decode_approval,
    decode_content,
    decode_missing_rpcs,
    decode_planned_steps,
)
from pikku_storage.codec import JsonObject, JsonValue, decode, decode_optional
from pikku_storage.interfaces.ai import StoredMessage, StoredToolCall
from pikku_storage.interfaces.workflows import GraphStep
from pikku_storage.postgres._connection import Row
from pikku_storage.records import (
    AgentRun,
    AgentRunScore,
    AgentRunStatus,
    ApprovalStatus,
    ChannelAndSession,
    DeploymentInfo,
    MessageRole,
    PendingApproval,
    ResolvedApproval,
    RunStep,
    StalledRun,
    StepHistoryEntry,
    StepInstance,
    StepState,
    StepStatus,
    SuspendReason,
    Thread,
    UndispatchedStep,
    Usage,
    WorkflowRun,
    WorkflowVersion,
    WorkflowVersionStatus,
)

__all__ = [
    "agent_run",
    "agent_run_with_approval",
    "approvals",
    "channel_and_session",
    "claimed_step",
    "decision",
    "deployment_info",
    "graph_step",
    "history_entry",
    "json_object",
    "run_step",
    "score",
    "stalled_run",
    "step_instance",
    "step_state",
    "stored_messages",
    "thread",
    "undispatched_step",
    "utc",
    "workflow_runs",
    "workflow_version",
]


_STEP_STATUS: Final = StepStatus._value2member_map_
_ROLE: Final = MessageRole._value2member_map_
_RUN_BASE_COLUMNS: Final = 11  # `_build.RunColumns`; deterministic and planned_steps follow


def utc(value: datetime) -> datetime:
    """A timestamp in UTC (already so when the session speaks UTC, as an owned pool's does)."""
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _utc_optional(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def json_object(text: str | None) -> JsonObject | None:
    """A stored JSON object column (errors, metadata); SQL NULL is `None`."""
    value = decode_optional(text)
    assert value is None or isinstance(value, dict)
    return value


def _retry_delay(text: str | None) -> int | str | None:
    value = decode_optional(text)
    assert value is None or isinstance(value, int | str)
    return value


def workflow_runs(rows: Sequence[Row]) -> list[WorkflowRun]:
    """Runs from `_RUN_COLUMNS` rows, their JSON parsed in one call (`_build`), then the
    fields of spec 05 (`deterministic`, `planned_steps`)."""
    base = [row[:_RUN_BASE_COLUMNS] for row in rows]
    runs = _build.workflow_runs(cast("Sequence[_build.RunColumns]", base))
    for run, row in zip(runs, rows, strict=True):
        run.deterministic = row[_RUN_BASE_COLUMNS]
        planned = row[_RUN_BASE_COLUMNS + 1]
        if planned != "[]":
            run.planned_steps = decode_planned_steps(planned)
    return runs


def _step_fields(columns: Sequence[object]) -> dict[str, object]:
    """The `StepState` fields of the 16 `_STEP_COLUMNS`, by name."""
    (
        step_id,
        status,
        result,
        error,
        attempt,
        retries,
        delay,
        created,
        updated,
        running,
        scheduled,
        succeeded,
        failed,
        rpc_name,
        from_step_name,
        child_run_id,
    ) = columns
    return {
        "step_id": step_id,
        "status": _STEP_STATUS[cast(str, status)],
        "result": decode_optional(cast("str | None", result)),
        "error": json_object(cast("str | None", error)),
        "attempt_count": attempt,
        "retries": retries,
        "retry_delay": _retry_delay(cast("str | None", delay)),
        "created_at": utc(cast(datetime, created)),
        "updated_at": utc(cast(datetime, updated)),
        "running_at": _utc_optional(cast("datetime | None", running)),
        "scheduled_at": _utc_optional(cast("datetime | None", scheduled)),
        "succeeded_at": _utc_optional(cast("datetime | None", succeeded)),
        "failed_at": _utc_optional(cast("datetime | None", failed)),
        "rpc_name": rpc_name,
        "from_step_name": from_step_name,
        "child_run_id": child_run_id,
    }


def step_state(row: Row) -> StepState:
    """Columns: `_STEP_COLUMNS`."""
    return StepState(**_step_fields(row))  # type: ignore[arg-type]  # typed by _step_fields


def claimed_step(row: Row) -> tuple[bool, StepState | None]:
    """Columns: found, then `_STEP_COLUMNS` (all NULL when the step was not claimed)."""
    found, step_id, *rest = row
    if step_id is None:
        return bool(found), None
    return True, step_state((step_id, *rest))


def run_step(row: Row) -> RunStep:
    """Columns: `_STEP_COLUMNS`, step_name, data."""
    *state, step_name, data = row
    return RunStep(
        step_name=step_name,
        data=decode_optional(data),
        **_step_fields(state),  # type: ignore[arg-type]  # typed by _step_fields
    )


def history_entry(row: Row) -> StepHistoryEntry:
    """Columns: the attempt's `_STEP_COLUMNS` (with the step's retry policy, rpc_name and
    from_step_name), step_name."""
    *state, step_name = row
    return StepHistoryEntry(
        step_name=step_name,
        **_step_fields(state),  # type: ignore[arg-type]  # typed by _step_fields
    )


def graph_step(row: Row) -> GraphStep:
    step_name, status, attempt, retries, branch = row
    return GraphStep(
        step_name=step_name,
        status=StepStatus(status),
        attempt_count=attempt,
        retries=retries,
        branch_taken=branch,
    )


def step_instance(row: Row) -> StepInstance:
    """Columns: step id, step_name, status, from_step_name."""
    step_id, step_name, status, from_step_name = row
    return StepInstance(
        step_id=step_id,
        step_name=step_name,
        status=_STEP_STATUS[status],  # type: ignore[arg-type]  # a StepStatus member
        from_step_name=from_step_name,
    )


def stalled_run(row: Row) -> StalledRun:
    """Columns: run id, workflow, activity_at."""
    run_id, workflow, idle_since = row
    return StalledRun(run_id=run_id, workflow=workflow, idle_since=utc(idle_since))


def undispatched_step(row: Row) -> UndispatchedStep:
    """Columns: run id, step id, step_name, rpc_name, dispatch_since."""
    run_id, step_id, step_name, rpc_name, pending_since = row
    return UndispatchedStep(
        run_id=run_id,
        step_id=step_id,
        step_name=step_name,
        rpc_name=rpc_name,
        pending_since=utc(pending_since),
    )


def workflow_version(row: Row) -> WorkflowVersion:
    """Columns: graph, source, status."""
    graph, source, status = row
    return WorkflowVersion(graph=decode(graph), source=source, status=WorkflowVersionStatus(status))


# --- AI -------------------------------------------------------------------------------------


def thread(row: Row) -> Thread:
    thread_id, resource_id, title, metadata, created, updated = row
    return Thread(
        id=thread_id,
        resource_id=resource_id,
        title=title,
        metadata=json_object(metadata),
        created_at=utc(created),
        updated_at=utc(updated),
    )


def approvals(kinds: list[str] | None, payloads: list[str] | None) -> list[PendingApproval]:
    """A run's pending set from the two arrays its queries aggregate in `position` order."""
    if not kinds or not payloads:
        return []
    return [decode_approval(kind, payload) for kind, payload in zip(kinds, payloads, strict=True)]


def agent_run(row: Sequence[object]) -> AgentRun:
    """Columns: `_RUN_COLUMNS` of `_sql_ai` (the run, then its pending kinds and payloads)."""
    (
        run_id,
        agent_name,
        thread_id,
        resource_id,
        status,
        error_message,
        suspend_reason,
        missing_rpcs,
        input_tokens,
        output_tokens,
        model,
        created,
        updated,
        kinds,
        payloads,
    ) = cast(Row, row)
    return AgentRun(
        run_id=run_id,
        agent_name=agent_name,
        thread_id=thread_id,
        resource_id=resource_id,
        status=AgentRunStatus(status),
        error_message=error_message,
        suspend_reason=None if suspend_reason is None else SuspendReason(suspend_reason),
        missing_rpcs=decode_missing_rpcs(missing_rpcs),
        pending_approvals=approvals(kinds, payloads),
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens, model=model),
        created_at=utc(created),
        updated_at=utc(updated),
    )


def agent_run_with_approval(row: Row) -> tuple[AgentRun, PendingApproval]:
    """Columns: `_RUN_COLUMNS`, then the kind and payload of the approval that was looked up."""
    *run, kind, payload = row
    return agent_run(run), decode_approval(kind, payload)


def decision(row: Row) -> ResolvedApproval:
    run_id, kind, payload, status, resolved = row
    return ResolvedApproval(
        run_id=run_id,
        approval=decode_approval(kind, payload),
        status=ApprovalStatus(status),
        resolved_at=utc(resolved),
    )


def stored_messages(rows: Sequence[Row]) -> list[StoredMessage]:
    """Messages from `_MESSAGE_ROWS` rows: one per message and call, calls in call order.

    Columns: seq, id, role, content_text, content_parts, created_at, reasoning_content,
    interrupted, then the call's id, name, args, result, result_undelivered (NULL for a message
    without calls).
    """
    messages: list[StoredMessage] = []
    current: object = None
    for (
        seq,
        message_id,
        role,
        text,
        parts,
        created,
        reasoning,
        interrupted,
        call_id,
        name,
        args,
        result,
        undelivered,
    ) in rows:
        if seq != current or not messages:
            current = seq
            messages.append(
                StoredMessage(
                    id=message_id,
                    role=_ROLE[role],  # type: ignore[arg-type]  # a MessageRole member
                    content=text if text is not None else decode_content(None, parts),
                    created_at=created if created.tzinfo is UTC else created.astimezone(UTC),
                    reasoning_content=reasoning,
                    interrupted=interrupted,
                )
            )
        if call_id is not None:
            decoded: JsonValue = decode(args)
            assert isinstance(decoded, dict)
            messages[-1].tool_calls.append(
                StoredToolCall(
                    id=call_id, name=name, args=decoded, result=result, undelivered=undelivered
                )
            )
    return messages


def score(row: Row) -> AgentRunScore:
    """Columns: run_id, scorer_name, score, reason, metadata, created_at."""
    return _build.agent_run_score(*row)


# --- channels and deployments ----------------------------------------------------------------


def channel_and_session(row: Row) -> ChannelAndSession:
    channel_id, channel_name, opening_data, session = row
    return ChannelAndSession(
        channel_id=channel_id,
        channel_name=channel_name,
        opening_data=decode(opening_data),
        session=json_object(session),
    )


def deployment_info(row: Row) -> DeploymentInfo:
    deployment_id, endpoint, last_heartbeat = row
    return DeploymentInfo(
        deployment_id=deployment_id, endpoint=endpoint, last_heartbeat=utc(last_heartbeat)
    )
