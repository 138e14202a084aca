"""Row to record mapping, one function per record type (style §6).

Each function unpacks the column list of its query in `_sql_*.py`, in the same order. JSON
arrives as text and goes through the codec; timestamps are converted to UTC whatever the
session's `TimeZone`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from pikku_storage import _build
from pikku_storage._serial import decode_approval, decode_content
from pikku_storage.codec import JsonObject, JsonValue, decode, decode_optional
from pikku_storage.interfaces.ai import StoredMessage, StoredToolCall
from pikku_storage.interfaces.workflows import GraphStep
from pikku_storage.postgres._connection import Row
from pikku_storage.records import (
    AgentRun,
    AgentRunStatus,
    ApprovalStatus,
    ChannelAndSession,
    DeploymentInfo,
    MessageRole,
    PendingApproval,
    ResolvedApproval,
    RunStep,
    StepHistoryEntry,
    StepState,
    StepStatus,
    SuspendReason,
    Thread,
    Usage,
    WorkflowRun,
)

__all__ = [
    "agent_run",
    "approvals",
    "channel_and_session",
    "decision",
    "deployment_info",
    "graph_step",
    "history_entry",
    "json_object",
    "run_step",
    "step_state",
    "stored_message",
    "stored_tool_call",
    "thread",
    "utc",
    "workflow_runs",
]


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _utc_optional(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


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
    """Runs from `_RUN_COLUMNS` rows, their JSON parsed in one call (`_build`)."""
    return _build.workflow_runs(cast("Sequence[_build.RunColumns]", rows))


def step_state(row: Row) -> StepState:
    (step_id, status, result, error, attempt, retries, delay, created, updated, *stamps) = row[:13]
    running, scheduled, succeeded, failed = stamps
    return StepState(
        step_id=step_id,
        status=StepStatus(status),
        result=decode_optional(result),
        error=json_object(error),
        attempt_count=attempt,
        retries=retries,
        retry_delay=_retry_delay(delay),
        created_at=utc(created),
        updated_at=utc(updated),
        running_at=_utc_optional(running),
        scheduled_at=_utc_optional(scheduled),
        succeeded_at=_utc_optional(succeeded),
        failed_at=_utc_optional(failed),
    )


def run_step(row: Row) -> RunStep:
    state = step_state(row)
    step_name, rpc_name, data = row[13:16]
    return RunStep(
        step_id=state.step_id,
        status=state.status,
        result=state.result,
        error=state.error,
        attempt_count=state.attempt_count,
        retries=state.retries,
        retry_delay=state.retry_delay,
        created_at=state.created_at,
        updated_at=state.updated_at,
        running_at=state.running_at,
        scheduled_at=state.scheduled_at,
        succeeded_at=state.succeeded_at,
        failed_at=state.failed_at,
        step_name=step_name,
        rpc_name=rpc_name,
        data=decode_optional(data),
    )


def history_entry(row: Row) -> StepHistoryEntry:
    state = step_state(row)
    return StepHistoryEntry(
        step_id=state.step_id,
        status=state.status,
        result=state.result,
        error=state.error,
        attempt_count=state.attempt_count,
        retries=state.retries,
        retry_delay=state.retry_delay,
        created_at=state.created_at,
        updated_at=state.updated_at,
        running_at=state.running_at,
        scheduled_at=state.scheduled_at,
        succeeded_at=state.succeeded_at,
        failed_at=state.failed_at,
        step_name=row[13],
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


def agent_run(row: Row) -> AgentRun:
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
    ) = row[:15]
    missing = decode_optional(missing_rpcs)
    assert missing is None or isinstance(missing, list)
    return AgentRun(
        run_id=run_id,
        agent_name=agent_name,
        thread_id=thread_id,
        resource_id=resource_id,
        status=AgentRunStatus(status),
        error_message=error_message,
        suspend_reason=None if suspend_reason is None else SuspendReason(suspend_reason),
        missing_rpcs=[str(name) for name in missing] if missing is not None else None,
        pending_approvals=approvals(kinds, payloads),
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens, model=model),
        created_at=utc(created),
        updated_at=utc(updated),
    )


def decision(row: Row) -> ResolvedApproval:
    run_id, kind, payload, status, resolved = row
    return ResolvedApproval(
        run_id=run_id,
        approval=decode_approval(kind, payload),
        status=ApprovalStatus(status),
        resolved_at=utc(resolved),
    )


def stored_message(row: Row) -> StoredMessage:
    """Columns: seq, id, role, content_text, content_parts, created_at (then tool-call ones)."""
    _seq, message_id, role, text, parts, created = row[:6]
    return StoredMessage(
        id=message_id,
        role=MessageRole(role),
        content=decode_content(text, parts),
        created_at=utc(created),
    )


def stored_tool_call(row: Row) -> StoredToolCall | None:
    """The tool-call columns after a message's six (`None` for a message without calls)."""
    call_id, name, args, result = row[6:10]
    if call_id is None:
        return None
    decoded: JsonValue = decode(args)
    assert isinstance(decoded, dict)
    return StoredToolCall(id=call_id, name=name, args=decoded, result=result)


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
