"""Rows to records: one function per record type (style §6)."""

from __future__ import annotations

from typing import Any, Final, TypeAlias

from sqlalchemy import Row

from pikku_storage._serial import (
    decode_approval,
    decode_content,
    decode_missing_rpcs,
    decode_planned_steps,
    decode_wire,
)
from pikku_storage.codec import JsonObject, decode, decode_optional
from pikku_storage.interfaces.ai import StoredMessage, StoredToolCall
from pikku_storage.interfaces.workflows import GraphStep
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
    WorkflowStatus,
    WorkflowVersion,
    WorkflowVersionStatus,
)

__all__ = [
    "agent_run",
    "approval",
    "channel_and_session",
    "decision",
    "deployment_info",
    "graph_step",
    "history_entry",
    "run_step",
    "step_state",
    "stored_message",
    "stored_tool_call",
    "thread",
    "workflow_run",
    "workflow_version",
]


AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"
_RUN_STATUSES: Final = {status.value: status for status in WorkflowStatus}
_ROLES: Final = {role.value: role for role in MessageRole}


def _object(text: str | None) -> JsonObject | None:
    value = decode_optional(text)
    assert value is None or isinstance(value, dict)
    return value


def _retry_delay(text: str | None) -> int | str | None:
    value = decode_optional(text)
    assert value is None or isinstance(value, int | str)
    return value


def workflow_run(row: AnyRow) -> WorkflowRun:
    return WorkflowRun(
        id=str(row.workflow_run_id),
        workflow=row.workflow,
        status=_RUN_STATUSES[row.status],
        input=decode_optional(row.input),
        output=decode_optional(row.output),
        error=_object(row.error),
        inline=bool(row.inline),
        graph_hash=row.graph_hash,
        wire=decode_wire(row.wire),
        created_at=row.created_at,
        updated_at=row.updated_at,
        deterministic=bool(row.deterministic),
        planned_steps=decode_planned_steps(row.planned_steps),
    )


def _step_fields(row: AnyRow) -> dict[str, Any]:
    return {
        "step_id": str(row.workflow_step_id),
        "status": StepStatus(row.status),
        "result": decode_optional(row.result),
        "error": _object(row.error),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "running_at": row.running_at,
        "scheduled_at": row.scheduled_at,
        "succeeded_at": row.succeeded_at,
        "failed_at": row.failed_at,
        "retries": row.retries,
        "retry_delay": _retry_delay(row.retry_delay),
        "rpc_name": row.rpc_name,
        "from_step_name": row.from_step_name,
        "child_run_id": row.child_run_id,
    }


def step_state(row: AnyRow) -> StepState:
    """A live step row (`workflow_step`)."""
    return StepState(attempt_count=row.attempt_count, **_step_fields(row))


def run_step(row: AnyRow) -> RunStep:
    """A live step row with its name, `rpc_name` and `data`."""
    return RunStep(
        attempt_count=row.attempt_count,
        step_name=row.step_name,
        data=decode_optional(row.data),
        **_step_fields(row),
    )


def history_entry(row: AnyRow) -> StepHistoryEntry:
    """A history row joined with its step's name, `retries` and `retry_delay`."""
    return StepHistoryEntry(attempt_count=row.attempt, step_name=row.step_name, **_step_fields(row))


def graph_step(row: AnyRow) -> GraphStep:
    return GraphStep(
        step_name=row.step_name,
        status=StepStatus(row.status),
        attempt_count=row.attempt_count,
        retries=row.retries,
        branch_taken=row.branch_taken,
    )


def workflow_version(row: AnyRow) -> WorkflowVersion:
    return WorkflowVersion(
        graph=decode(row.graph), source=row.source, status=WorkflowVersionStatus(row.status)
    )


def thread(row: AnyRow) -> Thread:
    return Thread(
        id=row.id,
        resource_id=row.resource_id,
        title=row.title,
        metadata=_object(row.metadata),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def stored_message(row: AnyRow) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        role=_ROLES[row.role],
        content=decode_content(row.content_text, row.content_parts),
        created_at=row.created_at,
        reasoning_content=row.reasoning_content,
        interrupted=bool(row.interrupted),
    )


def stored_tool_call(row: AnyRow) -> StoredToolCall:
    args = decode(row.args)
    assert isinstance(args, dict)
    return StoredToolCall(
        id=row.id,
        name=row.name,
        args=args,
        result=row.result,
        undelivered=bool(row.result_undelivered),
    )


def approval(row: AnyRow) -> PendingApproval:
    return decode_approval(row.kind, row.payload)


def agent_run(row: AnyRow, pending: list[PendingApproval]) -> AgentRun:
    return AgentRun(
        run_id=row.run_id,
        agent_name=row.agent_name,
        thread_id=row.thread_id,
        resource_id=row.resource_id,
        status=AgentRunStatus(row.status),
        error_message=row.error_message,
        suspend_reason=None if row.suspend_reason is None else SuspendReason(row.suspend_reason),
        missing_rpcs=decode_missing_rpcs(row.missing_rpcs),
        pending_approvals=pending,
        usage=Usage(
            input_tokens=int(row.usage_input_tokens),
            output_tokens=int(row.usage_output_tokens),
            model=row.usage_model,
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def decision(row: AnyRow) -> ResolvedApproval:
    return ResolvedApproval(
        run_id=row.run_id,
        approval=decode_approval(row.kind, row.payload),
        status=ApprovalStatus(row.status),
        resolved_at=row.resolved_at,
    )


def channel_and_session(row: AnyRow) -> ChannelAndSession:
    return ChannelAndSession(
        channel_id=row.channel_id,
        channel_name=row.channel_name,
        opening_data=decode(row.opening_data),
        session=_object(row.user_session),
    )


def deployment_info(row: AnyRow) -> DeploymentInfo:
    return DeploymentInfo(
        deployment_id=row.deployment_id,
        endpoint=row.endpoint,
        last_heartbeat=row.last_heartbeat,
    )
