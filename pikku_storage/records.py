"""Record types and enumerations of every service (see docs/services/workflows.md,
docs/services/ai-storage.md, docs/services/channels.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Final, TypeAlias

from pikku_storage.codec import JsonObject, JsonValue

__all__ = [
    "FINISHED_STATUSES",
    "UNSET",
    "AgentCallApproval",
    "AgentRun",
    "AgentRunRow",
    "AgentRunScore",
    "AgentRunStatus",
    "ApprovalStatus",
    "Channel",
    "ChannelAndSession",
    "CredentialRequestApproval",
    "CredentialType",
    "DeploymentConfig",
    "DeploymentInfo",
    "GraphState",
    "Message",
    "MessageRole",
    "PendingApproval",
    "PlannedStep",
    "ResolvedApproval",
    "RunStep",
    "StalledRun",
    "StepHistoryEntry",
    "StepInstance",
    "StepState",
    "StepStatus",
    "SuspendReason",
    "Thread",
    "ToolCall",
    "ToolCallApproval",
    "ToolResult",
    "UndispatchedStep",
    "UnsetType",
    "Usage",
    "WorkflowRun",
    "WorkflowRunWire",
    "WorkflowStatus",
    "WorkflowVersion",
    "WorkflowVersionStatus",
    "WorkingMemoryScope",
]


class UnsetType(enum.Enum):
    """Type of `UNSET`, the shared "leave unchanged" sentinel."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = UnsetType.UNSET


# --- workflows (see docs/services/workflows.md)
# ---------------------------------------------------------------


class WorkflowStatus(StrEnum):
    """A workflow run's status; any status may follow any status (`update_run_status`)."""

    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES: Final = (
    WorkflowStatus.COMPLETED,
    WorkflowStatus.FAILED,
    WorkflowStatus.CANCELLED,
)


class StepStatus(StrEnum):
    """A step's status, the same on the live step and on its current attempt."""

    PENDING = "pending"
    RUNNING = "running"
    SCHEDULED = "scheduled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUSPENDED = "suspended"


@dataclass(slots=True, kw_only=True)
class WorkflowRunWire:
    """How a run was started."""

    type: str
    id: str | None = None
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    pikku_user_id: str | None = None


@dataclass(slots=True, kw_only=True)
class PlannedStep:
    """A step a deterministic run plans to execute, in plan order (docs/services/workflows.md)."""

    step_name: str
    display_name: str | None = None


@dataclass(slots=True, kw_only=True)
class WorkflowRun:
    """A workflow run as `get_run` and `list_runs` return it; payloads are decoded JSON."""

    id: str
    workflow: str
    status: WorkflowStatus
    input: JsonValue
    output: JsonValue = None
    error: JsonObject | None = None
    inline: bool = False
    graph_hash: str | None = None
    wire: WorkflowRunWire
    created_at: datetime
    updated_at: datetime
    deterministic: bool = False
    planned_steps: list[PlannedStep] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class StepState:
    """A step's live state: the current attempt's status, outcome and stamps."""

    step_id: str
    status: StepStatus
    result: JsonValue = None
    error: JsonObject | None = None
    attempt_count: int
    retries: int | None = None
    retry_delay: int | str | None = None
    created_at: datetime
    updated_at: datetime
    running_at: datetime | None = None
    scheduled_at: datetime | None = None
    succeeded_at: datetime | None = None
    failed_at: datetime | None = None
    rpc_name: str | None = None
    from_step_name: str | None = None
    child_run_id: str | None = None


@dataclass(slots=True, kw_only=True)
class StepHistoryEntry(StepState):
    """One attempt of a step; `attempt_count` is this attempt's 1-based ordinal."""

    step_name: str


@dataclass(slots=True, kw_only=True)
class RunStep(StepState):
    """One step of a run, showing its current attempt (console view)."""

    step_name: str
    data: JsonValue = None


@dataclass(slots=True, kw_only=True)
class GraphState:
    """What a graph orchestrator needs to resume a run: finished nodes and branches taken."""

    completed_node_ids: list[str] = field(default_factory=list)
    failed_node_ids: list[str] = field(default_factory=list)
    branch_keys: dict[str, str] = field(default_factory=dict)


class WorkflowVersionStatus(StrEnum):
    """A stored workflow version's status; stored and returned, never interpreted."""

    DRAFT = "draft"
    ACTIVE = "active"
    DECLINED = "declined"


@dataclass(slots=True, kw_only=True)
class WorkflowVersion:
    """A workflow's graph and source, keyed by name and graph hash; never changed once stored."""

    graph: JsonValue
    source: str
    status: WorkflowVersionStatus = WorkflowVersionStatus.ACTIVE


@dataclass(slots=True, kw_only=True)
class StepInstance:
    """One step of a run without payloads (`get_step_instances`)."""

    step_id: str
    step_name: str
    status: StepStatus
    from_step_name: str | None


@dataclass(slots=True, kw_only=True)
class StalledRun:
    """A `running` run with no step in flight, idle since `idle_since` (`find_stalled_runs`)."""

    run_id: str
    workflow: str
    idle_since: datetime


@dataclass(slots=True, kw_only=True)
class UndispatchedStep:
    """A `pending` step of a `running` run, waiting since `pending_since`."""

    run_id: str
    step_id: str
    step_name: str
    rpc_name: str | None
    pending_since: datetime


# --- AI (see docs/services/ai-storage.md)
# ----------------------------------------------------------------------


class MessageRole(StrEnum):
    """Who wrote a message; `tool` messages are stored as results of their calls."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class AgentRunStatus(StrEnum):
    """An agent run's status; any status may follow any status (`update_run`)."""

    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped on purpose (talked over); not a failure


class SuspendReason(StrEnum):
    """Why a `suspended` agent run waits."""

    APPROVAL = "approval"
    RPC_MISSING = "rpc-missing"
    CREDENTIAL = "credential"


class CredentialType(StrEnum):
    """The kind of credential a `CredentialRequestApproval` asks the user to connect."""

    OAUTH2 = "oauth2"
    API_KEY = "apikey"


class WorkingMemoryScope(StrEnum):
    """Whether working memory belongs to one thread or to a whole resource."""

    THREAD = "thread"
    RESOURCE = "resource"


class ApprovalStatus(StrEnum):
    """The decision recorded when a pending approval is resolved."""

    APPROVED = "approved"
    DENIED = "denied"


@dataclass(slots=True, kw_only=True)
class Thread:
    """A conversation of one resource (user, tenant ...); `updated_at` moves on every save."""

    id: str
    resource_id: str
    title: str | None = None
    metadata: JsonObject | None = None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True, kw_only=True)
class ToolCall:
    """A tool call an assistant message made; `id` is unique within its thread."""

    id: str
    name: str
    args: JsonObject = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class ToolResult:
    """The result of one tool call, carried by a synthetic `tool` message when read back."""

    id: str
    name: str
    result: str
    undelivered: bool = False


@dataclass(slots=True, kw_only=True)
class Message:
    """One message of a thread, as saved and as `get_messages` returns it."""

    id: str
    role: MessageRole
    content: str | list[JsonObject] | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    created_at: datetime | None = None
    reasoning_content: str | None = None
    interrupted: bool = False
    undelivered: bool = False


@dataclass(slots=True, kw_only=True)
class Usage:
    """Token counts and model of an agent run."""

    input_tokens: int = 0
    output_tokens: int = 0
    model: str = ""


@dataclass(slots=True, kw_only=True)
class ToolCallApproval:
    """A tool call waiting for the user's approval before it runs."""

    TYPE: ClassVar[str] = "tool-call"
    tool_call_id: str
    tool_name: str
    args: JsonValue


@dataclass(slots=True, kw_only=True)
class AgentCallApproval:
    """A call of a sub-agent waiting for the user's approval before it runs."""

    TYPE: ClassVar[str] = "agent-call"
    tool_call_id: str
    agent_name: str
    agent_run_id: str
    display_tool_name: str
    display_args: JsonValue


@dataclass(slots=True, kw_only=True)
class CredentialRequestApproval:
    """A run suspended for a credential the user must connect (suspend reason `credential`)."""

    TYPE: ClassVar[str] = "credential-request"
    tool_call_id: str
    tool_name: str
    args: JsonValue
    credential_name: str
    credential_type: CredentialType
    connect_url: str | None = None


PendingApproval: TypeAlias = ToolCallApproval | AgentCallApproval | CredentialRequestApproval


@dataclass(slots=True, kw_only=True)
class AgentRun:
    """One run of an agent on a thread, with the approvals it waits for."""

    run_id: str
    agent_name: str
    thread_id: str
    resource_id: str
    status: AgentRunStatus
    error_message: str | None = None
    suspend_reason: SuspendReason | None = None
    missing_rpcs: list[str] | None = None
    pending_approvals: list[PendingApproval] = field(default_factory=list)
    usage: Usage
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True, kw_only=True)
class AgentRunScore:
    """One grade of an agent run; a run's scores are an append-only log."""

    run_id: str
    scorer_name: str
    score: float
    reason: str | None = None
    metadata: JsonObject | None = None
    created_at: datetime


@dataclass(slots=True, kw_only=True)
class AgentRunRow:
    """An `AgentRun` flattened for the console, without approvals."""

    run_id: str
    agent_name: str
    thread_id: str
    resource_id: str
    status: AgentRunStatus
    error_message: str | None
    suspend_reason: SuspendReason | None
    missing_rpcs: list[str] | None
    usage_input_tokens: int
    usage_output_tokens: int
    usage_model: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True, kw_only=True)
class ResolvedApproval:
    """One entry of a run's append-only decision log."""

    run_id: str
    approval: PendingApproval
    status: ApprovalStatus
    resolved_at: datetime


# --- channels and deployments (see docs/services/channels.md)
# ------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Channel:
    """A connected WebSocket channel and the data it opened with."""

    channel_id: str
    channel_name: str
    opening_data: JsonValue = None


@dataclass(slots=True, kw_only=True)
class ChannelAndSession:
    """A channel together with its session (`None` until one is set)."""

    channel_id: str
    channel_name: str
    opening_data: JsonValue = None
    session: dict[str, JsonValue] | None = None


@dataclass(slots=True, kw_only=True)
class DeploymentConfig:
    """What a process registers at `start()`: its id, endpoint and functions."""

    deployment_id: str
    endpoint: str
    functions: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class DeploymentInfo:
    """A live deployment as a function lookup returns it."""

    deployment_id: str
    endpoint: str
    last_heartbeat: datetime
