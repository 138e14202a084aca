"""Every table of one namespace as SQLAlchemy Core `Table`s on one `MetaData`.

`make_tables(schema, table_prefix)` is public so users can hand the `MetaData` to Alembic's
autogenerate; the services use the same objects (`Tables`), so statements and DDL agree.
Layout: docs/operations.md#storage-layout, docs/operations.md#storage-layout,
docs/operations.md#storage-layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeEngine

from pikku_storage import _validate as v
from pikku_storage.records import (
    AgentRunStatus,
    ApprovalStatus,
    MessageRole,
    StepStatus,
    SuspendReason,
    WorkflowStatus,
    WorkflowVersionStatus,
)
from pikku_storage.sqlalchemy._types import EpochMs, Ident, LongText, Timestamp, UuidText

__all__ = ["LAYOUT", "MAX_TABLE_PREFIX", "Tables", "build_tables", "make_tables"]

# Index names are `<prefix><at most 30 characters>`; 63 is PostgreSQL's identifier limit.
MAX_TABLE_PREFIX: Final = 32
ENDPOINT_LENGTH: Final = 2048
# The layout of the newest migration; `build_tables(..., layout=1)` rebuilds migration 1's tables.
LAYOUT: Final = 2


def _seq() -> Column[int]:
    """The insertion sequence: the surrogate primary key (`Integer` on SQLite: the rowid)."""
    return Column(
        "seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


# Migration 1's CHECK lists, frozen: a later enum member is added by a later migration.
_V1_AGENT_RUN_STATUSES: Final = ("running", "suspended", "completed", "failed")
_V1_SUSPEND_REASONS: Final = ("approval", "rpc-missing")


def _check(column: str, values: list[str], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


@dataclass(frozen=True, slots=True)
class Tables:
    """The tables of one namespace, and the `MetaData` holding them."""

    metadata: MetaData
    prefix: str
    schema_version: Table
    workflow_runs: Table
    workflow_steps: Table
    workflow_history: Table
    workflow_state: Table
    workflow_versions: Table
    ai_threads: Table
    ai_messages: Table
    ai_tool_calls: Table
    ai_thread_memory: Table
    ai_resource_memory: Table
    ai_runs: Table
    ai_pending_approvals: Table
    ai_approval_decisions: Table
    ai_run_scores: Table
    channels: Table
    channel_subscriptions: Table
    deployments: Table
    deployment_functions: Table


def make_tables(schema: str | None = None, table_prefix: str = "pikku_") -> MetaData:
    """The `MetaData` of every table of one namespace, for Alembic's `target_metadata`.

    Tables are named `<table_prefix><name>` in `schema` (PostgreSQL and MySQL only). Raises:
    `InvalidValue` for a name that is not a plain identifier. See
    docs/concepts.md#lifecycle-and-namespaces.
    """
    return build_tables(schema, table_prefix).metadata


@lru_cache(maxsize=64)
def build_tables(schema: str | None, table_prefix: str, layout: int = LAYOUT) -> Tables:
    """The `Tables` of one namespace; cached, since building them is pure.

    `layout` 1 gives the tables as migration 1 created them (its DDL and checksum stay fixed);
    the services and Alembic use the newest layout.
    """
    if schema is not None:
        v.namespace("schema", schema)
    prefix = v.table_prefix("table_prefix", table_prefix, max_length=MAX_TABLE_PREFIX)
    ns = _Namespace(MetaData(schema=schema), prefix, schema, layout)
    return Tables(
        metadata=ns.metadata,
        prefix=prefix,
        schema_version=_version_table(ns),
        **_workflow_tables(ns),
        **_ai_tables(ns),
        **_channel_tables(ns),
        **_deployment_tables(ns),
    )


@dataclass(frozen=True, slots=True)
class _Namespace:
    """Where one namespace's tables go: their `MetaData`, name prefix and schema."""

    metadata: MetaData
    prefix: str
    schema: str | None
    layout: int

    def kind_type(self) -> TypeEngine[str]:
        """Approval kinds: 16 characters in migration 1, 32 since `credential-request` (SQLite
        keeps its declared 16: it enforces no length, and a changed type needs a rebuild)."""
        if self.layout < 2:
            return String(16)
        return String(32).with_variant(String(16), "sqlite")

    def since(self, layout: int, *items: SchemaItem) -> tuple[SchemaItem, ...]:
        """`items` when this namespace's layout includes migration `layout`, else none."""
        return items if self.layout >= layout else ()

    def name(self, suffix: str) -> str:
        """A table, index or constraint name: the prefix, then `suffix`."""
        return f"{self.prefix}{suffix}"

    def table(self, name: str, *items: SchemaItem) -> Table:
        """The table `<prefix><name>`; on MySQL an InnoDB table in utf8mb4
        (docs/operations.md#storage-layout)."""
        return Table(
            self.name(name), self.metadata, *items, mysql_engine="InnoDB", mysql_charset="utf8mb4"
        )

    def fk(self, table: str, column: str) -> str:
        """The target of a foreign key to `column` of this namespace's `table`."""
        qualified = self.name(table)
        return f"{self.schema}.{qualified}.{column}" if self.schema else f"{qualified}.{column}"


def _version_table(ns: _Namespace) -> Table:
    """The applied schema versions (what `migrate` and `verify` read)."""
    return ns.table(
        "schema_version",
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("checksum", String(64), nullable=False),
        Column("applied_at", BigInteger, nullable=False),
    )


def _workflow_tables(ns: _Namespace) -> dict[str, Table]:
    """Runs, steps, attempt history, run state and workflow versions
    (docs/operations.md#storage-layout)."""
    statuses = [s.value for s in WorkflowStatus]
    step_statuses = [s.value for s in StepStatus]
    stamps = ("running_at", "scheduled_at", "succeeded_at", "failed_at")
    runs = ns.table(
        "workflow_runs",
        _seq(),
        Column("workflow_run_id", UuidText(), nullable=False),
        Column("workflow", Ident(), nullable=False),
        Column("status", String(16), nullable=False),
        Column("input", LongText()),
        Column("output", LongText()),
        Column("error", LongText()),
        Column("inline", Boolean(create_constraint=False), nullable=False),
        Column("graph_hash", Ident()),
        Column("wire", LongText(), nullable=False),
        Column("created_at", Timestamp(), nullable=False),
        Column("updated_at", Timestamp(), nullable=False),
        *ns.since(
            2,
            Column(
                "deterministic",
                Boolean(create_constraint=False),
                nullable=False,
                server_default=false(),
            ),
            Column("planned_steps", LongText()),
            # Markers (docs/operations.md#storage-layout): steps running, scheduled or
            # suspended, and the latest `updated_at` of the run and its steps.
            Column("active_steps", Integer, nullable=False, server_default=text("0")),
            Column("activity_at", Timestamp(), nullable=False),
            # Stalled candidates: partial where the dialect has them, else led by the filter.
            Index(
                ns.name("wf_runs_stalled_idx"),
                "status",
                "active_steps",
                "activity_at",
                "workflow_run_id",
                postgresql_where=text("status = 'running' AND active_steps = 0"),
                sqlite_where=text("status = 'running' AND active_steps = 0"),
            ),
        ),
        UniqueConstraint("workflow_run_id", name=ns.name("wf_runs_id_key")),
        _check("status", statuses, ns.name("wf_runs_status_check")),
        Index(ns.name("wf_runs_created_idx"), "created_at", "seq"),
        Index(ns.name("wf_runs_workflow_idx"), "workflow", "created_at", "seq"),
        Index(ns.name("wf_runs_status_idx"), "status", "created_at", "seq"),
        Index(ns.name("wf_runs_wf_status_idx"), "workflow", "status", "created_at", "seq"),
        Index(ns.name("wf_runs_updated_idx"), "status", "updated_at", "seq"),
    )
    steps = ns.table(
        "workflow_step",
        _seq(),
        Column("workflow_step_id", UuidText(), nullable=False),
        Column("workflow_run_id", UuidText(), nullable=False),
        Column("step_name", Ident(), nullable=False),
        Column("rpc_name", Ident()),
        Column("data", LongText()),
        Column("status", String(16), nullable=False),
        Column("result", LongText()),
        Column("error", LongText()),
        Column("attempt_count", Integer, nullable=False),
        Column("retries", Integer),
        Column("retry_delay", LongText()),
        Column("branch_taken", Ident()),
        Column("created_at", Timestamp(), nullable=False),
        Column("updated_at", Timestamp(), nullable=False),
        *(Column(stamp, Timestamp()) for stamp in stamps),
        *ns.since(
            2,
            Column("from_step_name", Ident()),
            Column("child_run_id", Ident()),
            # `updated_at` while pending in a running run, else NULL (the undispatched set).
            Column("dispatch_since", Timestamp()),
            Index(
                ns.name("wf_step_dispatch_idx"),
                "dispatch_since",
                "workflow_step_id",
                postgresql_where=text("dispatch_since IS NOT NULL"),
                sqlite_where=text("dispatch_since IS NOT NULL"),
            ),
        ),
        UniqueConstraint("workflow_step_id", name=ns.name("wf_step_id_key")),
        UniqueConstraint("workflow_run_id", "step_name", name=ns.name("wf_step_name_key")),
        ForeignKeyConstraint(
            ["workflow_run_id"],
            [ns.fk("workflow_runs", "workflow_run_id")],
            name=ns.name("wf_step_run_fk"),
            ondelete="CASCADE",
        ),
        _check("status", step_statuses, ns.name("wf_step_status_check")),
        CheckConstraint("attempt_count >= 1", name=ns.name("wf_step_attempt_check")),
        CheckConstraint("retries >= 0", name=ns.name("wf_step_retries_check")),
        Index(ns.name("wf_step_created_idx"), "workflow_run_id", "created_at", "seq"),
    )
    history = ns.table(
        "workflow_step_history",
        _seq(),
        Column("workflow_step_id", UuidText(), nullable=False),
        Column("attempt", Integer, nullable=False),
        Column("workflow_run_id", UuidText(), nullable=False),
        Column("status", String(16), nullable=False),
        Column("result", LongText()),
        Column("error", LongText()),
        Column("created_at", Timestamp(), nullable=False),
        Column("updated_at", Timestamp(), nullable=False),
        *(Column(stamp, Timestamp()) for stamp in stamps),
        *ns.since(2, Column("child_run_id", Ident())),
        UniqueConstraint("workflow_step_id", "attempt", name=ns.name("wf_hist_attempt_key")),
        ForeignKeyConstraint(
            ["workflow_step_id"],
            [ns.fk("workflow_step", "workflow_step_id")],
            name=ns.name("wf_hist_step_fk"),
            ondelete="CASCADE",
        ),
        _check("status", step_statuses, ns.name("wf_hist_status_check")),
        Index(ns.name("wf_hist_created_idx"), "workflow_run_id", "created_at", "seq"),
    )
    state = ns.table(
        "workflow_run_state",
        Column("workflow_run_id", UuidText(), nullable=False),
        Column("name", Ident(), nullable=False),
        Column("value", LongText()),
        PrimaryKeyConstraint("workflow_run_id", "name", name=ns.name("wf_state_pkey")),
        ForeignKeyConstraint(
            ["workflow_run_id"],
            [ns.fk("workflow_runs", "workflow_run_id")],
            name=ns.name("wf_state_run_fk"),
            ondelete="CASCADE",
        ),
    )
    versions = ns.table(
        "workflow_versions",
        Column("workflow_name", Ident(), nullable=False),
        Column("graph_hash", Ident(), nullable=False),
        Column("graph", LongText(), nullable=False),
        Column("source", LongText(), nullable=False),
        Column("created_at", Timestamp(), nullable=False),
        *ns.since(
            2,
            Column("status", String(16), nullable=False, server_default="active"),
            _check(
                "status",
                [s.value for s in WorkflowVersionStatus],
                ns.name("wf_versions_status_check"),
            ),
        ),
        PrimaryKeyConstraint("workflow_name", "graph_hash", name=ns.name("wf_versions_pkey")),
    )

    return {
        "workflow_runs": runs,
        "workflow_steps": steps,
        "workflow_history": history,
        "workflow_state": state,
        "workflow_versions": versions,
    }


def _ai_tables(ns: _Namespace) -> dict[str, Table]:
    """Threads, messages, tool calls, memories, agent runs, approvals and scores
    (docs/operations.md#storage-layout)."""
    if ns.layout >= 2:
        run_statuses = [s.value for s in AgentRunStatus]
        reasons = [r.value for r in SuspendReason]
    else:
        run_statuses, reasons = list(_V1_AGENT_RUN_STATUSES), list(_V1_SUSPEND_REASONS)
    threads = ns.table(
        "ai_threads",
        _seq(),
        Column("id", Ident(), nullable=False),
        Column("resource_id", Ident(), nullable=False),
        Column("title", LongText()),
        Column("metadata", LongText()),
        Column("message_seq", BigInteger, nullable=False),
        Column("created_at", EpochMs(), nullable=False),
        Column("updated_at", EpochMs(), nullable=False),
        UniqueConstraint("id", name=ns.name("ai_threads_id_key")),
        Index(ns.name("ai_threads_updated_idx"), "updated_at", "seq"),
        Index(ns.name("ai_threads_resource_idx"), "resource_id", "updated_at", "seq"),
    )
    messages = ns.table(
        "ai_messages",
        Column("thread_id", Ident(), nullable=False),
        Column("seq", BigInteger, nullable=False, autoincrement=False),
        Column("id", Ident(), nullable=False),
        Column("role", String(16), nullable=False),
        Column("content_text", LongText()),
        Column("content_parts", LongText()),
        Column("created_at", EpochMs(), nullable=False),
        *ns.since(
            2,
            Column("reasoning_content", LongText()),
            Column(
                "interrupted",
                Boolean(create_constraint=False),
                nullable=False,
                server_default=false(),
            ),
        ),
        PrimaryKeyConstraint("thread_id", "seq", name=ns.name("ai_messages_pkey")),
        UniqueConstraint("thread_id", "id", name=ns.name("ai_messages_id_key")),
        ForeignKeyConstraint(
            ["thread_id"],
            [ns.fk("ai_threads", "id")],
            name=ns.name("ai_messages_thread_fk"),
            ondelete="CASCADE",
        ),
        _check(
            "role",
            [r.value for r in MessageRole if r is not MessageRole.TOOL],
            ns.name("ai_messages_role_check"),
        ),
        Index(ns.name("ai_messages_created_idx"), "thread_id", "created_at", "seq"),
    )
    tool_calls = ns.table(
        "ai_tool_calls",
        Column("thread_id", Ident(), nullable=False),
        Column("id", Ident(), nullable=False),
        Column("message_seq", BigInteger, nullable=False),
        Column("position", Integer, nullable=False),
        Column("name", Ident(), nullable=False),
        Column("args", LongText(), nullable=False),
        Column("result", LongText()),
        *ns.since(
            2,
            Column(
                "result_undelivered",
                Boolean(create_constraint=False),
                nullable=False,
                server_default=false(),
            ),
        ),
        PrimaryKeyConstraint("thread_id", "id", name=ns.name("ai_tool_calls_pkey")),
        ForeignKeyConstraint(
            ["thread_id", "message_seq"],
            [ns.fk("ai_messages", "thread_id"), ns.fk("ai_messages", "seq")],
            name=ns.name("ai_tool_calls_message_fk"),
            ondelete="CASCADE",
        ),
        Index(ns.name("ai_tool_calls_message_idx"), "thread_id", "message_seq", "position"),
    )
    thread_memory = ns.table(
        "ai_thread_memory",
        Column("thread_id", Ident(), nullable=False),
        Column("data", LongText(), nullable=False),
        Column("updated_at", EpochMs(), nullable=False),
        PrimaryKeyConstraint("thread_id", name=ns.name("ai_thread_memory_pkey")),
        ForeignKeyConstraint(
            ["thread_id"],
            [ns.fk("ai_threads", "id")],
            name=ns.name("ai_thread_memory_fk"),
            ondelete="CASCADE",
        ),
    )
    resource_memory = ns.table(
        "ai_resource_memory",
        Column("resource_id", Ident(), nullable=False),
        Column("data", LongText(), nullable=False),
        Column("updated_at", EpochMs(), nullable=False),
        PrimaryKeyConstraint("resource_id", name=ns.name("ai_resource_memory_pkey")),
    )
    ai_runs = ns.table(
        "ai_runs",
        _seq(),
        Column("run_id", Ident(), nullable=False),
        Column("thread_id", Ident(), nullable=False),
        Column("agent_name", Ident(), nullable=False),
        Column("resource_id", Ident(), nullable=False),
        Column("status", String(16), nullable=False),
        Column("error_message", LongText()),
        Column("suspend_reason", String(16)),
        Column("missing_rpcs", LongText()),
        Column("usage_input_tokens", BigInteger, nullable=False),
        Column("usage_output_tokens", BigInteger, nullable=False),
        Column("usage_model", LongText(), nullable=False),
        Column("created_at", EpochMs(), nullable=False),
        Column("updated_at", EpochMs(), nullable=False),
        UniqueConstraint("run_id", name=ns.name("ai_runs_id_key")),
        ForeignKeyConstraint(
            ["thread_id"],
            [ns.fk("ai_threads", "id")],
            name=ns.name("ai_runs_thread_fk"),
            ondelete="CASCADE",
        ),
        _check("status", run_statuses, ns.name("ai_runs_status_check")),
        _check("suspend_reason", reasons, ns.name("ai_runs_reason_check")),
        Index(ns.name("ai_runs_thread_idx"), "thread_id", "created_at", "seq"),
        Index(ns.name("ai_runs_agent_idx"), "agent_name", "thread_id"),
    )
    pending = ns.table(
        "ai_pending_approvals",
        Column("run_id", Ident(), nullable=False),
        Column("tool_call_id", Ident(), nullable=False),
        Column("position", Integer, nullable=False),
        Column("kind", ns.kind_type(), nullable=False),
        Column("payload", LongText(), nullable=False),
        PrimaryKeyConstraint("run_id", "tool_call_id", name=ns.name("ai_pending_pkey")),
        ForeignKeyConstraint(
            ["run_id"],
            [ns.fk("ai_runs", "run_id")],
            name=ns.name("ai_pending_run_fk"),
            ondelete="CASCADE",
        ),
        Index(ns.name("ai_pending_tool_call_idx"), "tool_call_id"),
    )
    decisions = ns.table(
        "ai_approval_decisions",
        _seq(),
        Column("run_id", Ident(), nullable=False),
        Column("tool_call_id", Ident(), nullable=False),
        Column("kind", ns.kind_type(), nullable=False),
        Column("payload", LongText(), nullable=False),
        Column("status", String(16), nullable=False),
        Column("resolved_at", EpochMs(), nullable=False),
        ForeignKeyConstraint(
            ["run_id"],
            [ns.fk("ai_runs", "run_id")],
            name=ns.name("ai_decisions_run_fk"),
            ondelete="CASCADE",
        ),
        _check("status", [s.value for s in ApprovalStatus], ns.name("ai_decisions_status_check")),
        Index(ns.name("ai_decisions_run_idx"), "run_id", "seq"),
    )
    scores = ns.table(
        "ai_run_scores",
        _seq(),
        Column("run_id", Ident(), nullable=False),
        Column("scorer_name", Ident(), nullable=False),
        Column("score", Double(), nullable=False),
        Column("reason", LongText()),
        Column("metadata", LongText()),
        Column("created_at", EpochMs(), nullable=False),
        ForeignKeyConstraint(
            ["run_id"],
            [ns.fk("ai_runs", "run_id")],
            name=ns.name("ai_scores_run_fk"),
            ondelete="CASCADE",
        ),
        CheckConstraint("score BETWEEN 0 AND 1", name=ns.name("ai_scores_score_check")),
        Index(ns.name("ai_scores_run_idx"), "run_id", "created_at", "seq"),
    )

    return {
        "ai_threads": threads,
        "ai_messages": messages,
        "ai_tool_calls": tool_calls,
        "ai_thread_memory": thread_memory,
        "ai_resource_memory": resource_memory,
        "ai_runs": ai_runs,
        "ai_pending_approvals": pending,
        "ai_approval_decisions": decisions,
        "ai_run_scores": scores,
    }


def _channel_tables(ns: _Namespace) -> dict[str, Table]:
    """Channels and their topic subscriptions (docs/operations.md#storage-layout)."""
    channels = ns.table(
        "channels",
        Column("channel_id", Ident(), nullable=False),
        Column("channel_name", Ident(), nullable=False),
        Column("opening_data", LongText(), nullable=False),
        Column("user_session", LongText()),
        Column("last_seen", EpochMs(), nullable=False),
        PrimaryKeyConstraint("channel_id", name=ns.name("channels_pkey")),
        Index(ns.name("channels_last_seen_idx"), "last_seen", "channel_id"),
    )
    subscriptions = ns.table(
        "channel_subscriptions",
        Column("topic", Ident(), nullable=False),
        Column("channel_id", Ident(), nullable=False),
        PrimaryKeyConstraint("topic", "channel_id", name=ns.name("channel_subs_pkey")),
        ForeignKeyConstraint(
            ["channel_id"],
            [ns.fk("channels", "channel_id")],
            name=ns.name("channel_subs_channel_fk"),
            ondelete="CASCADE",
        ),
        Index(ns.name("channel_subs_channel_idx"), "channel_id"),
    )
    return {
        "channels": channels,
        "channel_subscriptions": subscriptions,
    }


def _deployment_tables(ns: _Namespace) -> dict[str, Table]:
    """Deployments and the functions each one serves (docs/operations.md#storage-layout)."""
    deployments = ns.table(
        "deployments",
        Column("deployment_id", Ident(), nullable=False),
        Column("endpoint", String(ENDPOINT_LENGTH), nullable=False),
        Column("last_heartbeat", EpochMs(), nullable=False),
        PrimaryKeyConstraint("deployment_id", name=ns.name("deployments_pkey")),
        Index(ns.name("deployments_heartbeat_idx"), "last_heartbeat", "deployment_id"),
    )
    functions = ns.table(
        "deployment_functions",
        Column("function_name", Ident(), nullable=False),
        Column("deployment_id", Ident(), nullable=False),
        PrimaryKeyConstraint("function_name", "deployment_id", name=ns.name("deploy_fn_pkey")),
        ForeignKeyConstraint(
            ["deployment_id"],
            [ns.fk("deployments", "deployment_id")],
            name=ns.name("deploy_fn_deployment_fk"),
            ondelete="CASCADE",
        ),
        Index(ns.name("deploy_fn_deployment_idx"), "deployment_id"),
    )
    return {
        "deployments": deployments,
        "deployment_functions": functions,
    }
