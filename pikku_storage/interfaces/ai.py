"""`AIStorageService`, `AIRunStateService`, `AgentRunService`: validation once, then hooks.

Ids, JSON, enums, scores and owners are checked here before any I/O (message batches in
`_ai_messages`); the backend hooks only perform the storage steps in the order
docs/services/ai-storage.md gives (thread, duplicates, results, write). Synthetic tool-result
messages are rebuilt from stored calls, so every backend returns the same shape.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pikku_storage import _validate as v
from pikku_storage._ids import is_canonical_uuid, new_id
from pikku_storage._owners import check_owners
from pikku_storage._serial import EncodedApproval, encode_approval
from pikku_storage.codec import JsonInputObject, JsonObject, decode, encode_object
from pikku_storage.errors import InvalidValue, RunNotFound, ThreadNotFound
from pikku_storage.interfaces._ai_messages import (
    MessageBatch,
    NewMessage,
    NewToolCall,
    StoredMessage,
    StoredToolCall,
    prepare_batch,
    rebuild,
)
from pikku_storage.interfaces._base import Service
from pikku_storage.records import (
    UNSET,
    AgentRun,
    AgentRunRow,
    AgentRunScore,
    AgentRunStatus,
    ApprovalStatus,
    Message,
    PendingApproval,
    ResolvedApproval,
    SuspendReason,
    Thread,
    UnsetType,
    Usage,
    WorkingMemoryScope,
)

__all__ = [
    "AIRunStateService",
    "AIStorageService",
    "AgentRunChanges",
    "AgentRunService",
    "MessageBatch",
    "NewAgentRun",
    "NewMessage",
    "NewScore",
    "NewThread",
    "NewToolCall",
    "StoredMessage",
    "StoredToolCall",
]

DEFAULT_CURSOR_WINDOW: Final = 50
MAX_TOKENS: Final = 2**63


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class NewThread:
    thread_id: str
    resource_id: str
    title: str | None
    metadata: str | None
    now: datetime


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class NewAgentRun:
    run_id: str
    agent_name: str
    thread_id: str
    resource_id: str
    status: AgentRunStatus
    error_message: str | None
    suspend_reason: SuspendReason | None
    missing_rpcs: list[str] | None
    usage: Usage
    pending_approvals: tuple[EncodedApproval, ...]
    now: datetime


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class AgentRunChanges:
    """The fields of one `update_run` call; `UNSET` leaves a field alone."""

    status: AgentRunStatus | UnsetType = UNSET
    error_message: str | UnsetType | None = UNSET
    suspend_reason: SuspendReason | UnsetType | None = UNSET
    missing_rpcs: list[str] | UnsetType | None = UNSET
    usage: Usage | UnsetType = UNSET
    pending_approvals: tuple[EncodedApproval, ...] | UnsetType = UNSET


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class NewScore:
    """A validated `save_score`: `metadata` is the JSON text of an object or `None`."""

    run_id: str
    scorer_name: str
    score: float
    reason: str | None
    metadata: str | None
    now: datetime


# --- field validation -----------------------------------------------------------------------


def _score(value: object) -> float:
    """A finite `int`/`float` (not `bool`) in [0, 1], as the `float` stored (`-0.0` is `0.0`)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"score must be an int or float, got {type(value).__name__}")
    if isinstance(value, int) and not 0 <= value <= 1:
        raise InvalidValue(f"score must be between 0 and 1: {value}")  # before float(): no overflow
    checked = float(value) + 0.0
    if not math.isfinite(checked) or not 0.0 <= checked <= 1.0:
        raise InvalidValue(f"score must be a finite number between 0 and 1: {value!r}")
    return checked


def _usage(value: object) -> Usage:
    if not isinstance(value, Usage):
        raise InvalidValue(f"usage must be a Usage, got {type(value).__name__}")
    return Usage(
        input_tokens=v.non_negative_int("usage.input_tokens", value.input_tokens, below=MAX_TOKENS),
        output_tokens=v.non_negative_int(
            "usage.output_tokens", value.output_tokens, below=MAX_TOKENS
        ),
        model=v.plain_text("usage.model", value.model),
    )


def _missing_rpcs(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise InvalidValue("missing_rpcs must be None or a list of strings")
    return [v.plain_text(f"missing_rpcs[{i}]", item) for i, item in enumerate(value)]


def _suspend_reason(value: object) -> SuspendReason | None:
    return None if value is None else v.enum_member(SuspendReason, "suspend_reason", value)


def _approvals(value: object) -> tuple[EncodedApproval, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidValue("pending_approvals must be a list of approvals")
    encoded = tuple(
        encode_approval(item, f"pending_approvals[{i}]") for i, item in enumerate(value)
    )
    ids = [approval.tool_call_id for approval in encoded]
    if len(set(ids)) != len(ids):
        raise InvalidValue("pending_approvals repeats a tool_call_id")
    return encoded


def _run_id(value: object) -> tuple[str, bool]:
    checked = v.identifier("run_id", value)
    return checked, is_canonical_uuid(checked)


# --- services --------------------------------------------------------------------------------


class _ThreadReads(Service):
    """Hooks shared by the conversation and console services."""

    @abstractmethod
    async def _get_thread(self, thread_id: str) -> Thread | None: ...

    @abstractmethod
    async def _get_messages(
        self, thread_id: str, last_n: int | None, cursor: str | None
    ) -> list[StoredMessage]:
        """Stored messages of the window in stored order (`created_at`, sequence).

        No cursor: the last `last_n` (all for `None`). With a cursor: the last `last_n` strictly
        before the cursor message, `[]` if the cursor is not a stored message of the thread.
        Unknown thread: `[]`. Cost bounded by the window.
        """

    @abstractmethod
    async def _delete_thread(self, thread_id: str) -> bool:
        """The whole cascade of docs/services/ai-storage.md delete_thread (the runs' scores
        included) in one atomic step; `True` if it existed."""


class _RunReads(Service):
    @abstractmethod
    async def _get_runs_by_thread(self, thread_id: str) -> list[AgentRun]:
        """The thread's runs, newest first (ties: later-created first), with pending sets."""


class AIStorageService(_ThreadReads):
    """Threads, messages with tool calls and results, and working memory (see
    docs/services/ai-storage.md)."""

    async def create_thread(
        self,
        resource_id: str,
        *,
        thread_id: str | None = None,
        title: str | None = None,
        metadata: JsonInputObject | None = None,
    ) -> Thread:
        """Create a thread (a new UUID4 id when `thread_id` is None). Raises: `ConflictError`."""
        thread = NewThread(
            thread_id=new_id() if thread_id is None else v.identifier("thread_id", thread_id),
            resource_id=v.identifier("resource_id", resource_id),
            title=v.optional_text("title", title),
            metadata=None if metadata is None else encode_object(metadata, "metadata"),
            now=self._now(),
        )
        await self._create_thread(thread)
        return Thread(
            id=thread.thread_id,
            resource_id=thread.resource_id,
            title=thread.title,
            metadata=None if thread.metadata is None else decode(thread.metadata),  # type: ignore[arg-type]  # an object by encode_object
            created_at=thread.now,
            updated_at=thread.now,
        )

    async def get_thread(self, thread_id: str) -> Thread:
        """The thread. Raises: `ThreadNotFound`."""
        v.identifier("thread_id", thread_id)
        thread = await self._get_thread(thread_id)
        if thread is None:
            raise ThreadNotFound(thread_id)
        return thread

    async def get_threads(self, resource_id: str) -> list[Thread]:
        """The resource's threads, most recently updated first (ties: later-created first)."""
        return await self._get_threads(v.identifier("resource_id", resource_id))

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread with messages, runs, scores, approvals, decisions and thread
        memory."""
        await self._delete_thread(v.identifier("thread_id", thread_id))

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> None:
        """Store a batch atomically, all or nothing, in the order of checks of
        docs/services/ai-storage.md."""
        v.identifier("thread_id", thread_id)
        await self._save_messages(thread_id, prepare_batch(thread_id, messages, self._now()))

    async def get_messages(
        self, thread_id: str, *, last_n: int | None = None, cursor: str | None = None
    ) -> list[Message]:
        """Messages in stored order with synthetic tool-result messages
        (docs/services/ai-storage.md)."""
        v.identifier("thread_id", thread_id)
        if last_n is not None:
            last_n = v.count("last_n", last_n)
        v.optional_identifier("cursor", cursor)
        if cursor is not None and last_n is None:
            last_n = DEFAULT_CURSOR_WINDOW
        if last_n == 0:
            return []
        return rebuild(await self._get_messages(thread_id, last_n, cursor))

    async def get_working_memory(
        self, id: str, scope: WorkingMemoryScope | str
    ) -> JsonObject | None:
        """The stored object of (`scope`, `id`), or `None`."""
        checked = v.enum_member(WorkingMemoryScope, "scope", scope)
        return await self._get_working_memory(v.identifier("id", id), checked)

    async def save_working_memory(
        self, id: str, scope: WorkingMemoryScope | str, data: JsonInputObject
    ) -> None:
        """Replace the object of (`scope`, `id`). Raises: `ThreadNotFound` for thread scope."""
        checked = v.enum_member(WorkingMemoryScope, "scope", scope)
        v.identifier("id", id)
        text = encode_object(data, "data")
        await self._save_working_memory(id, checked, text, self._now())

    async def delete_working_memory(self, id: str, scope: WorkingMemoryScope | str) -> bool:
        """Delete the object of (`scope`, `id`); `True` if one existed."""
        checked = v.enum_member(WorkingMemoryScope, "scope", scope)
        return await self._delete_working_memory(v.identifier("id", id), checked)

    @abstractmethod
    async def _create_thread(self, thread: NewThread) -> None:
        """Raises `ConflictError.thread`."""

    @abstractmethod
    async def _get_threads(self, resource_id: str) -> list[Thread]: ...

    @abstractmethod
    async def _save_messages(self, thread_id: str, batch: MessageBatch) -> None: ...

    @abstractmethod
    async def _get_working_memory(
        self, id: str, scope: WorkingMemoryScope
    ) -> JsonObject | None: ...

    @abstractmethod
    async def _save_working_memory(
        self, id: str, scope: WorkingMemoryScope, data: str, now: datetime
    ) -> None:
        """Raises `ThreadNotFound` for thread scope without its thread."""

    @abstractmethod
    async def _delete_working_memory(self, id: str, scope: WorkingMemoryScope) -> bool: ...


class AIRunStateService(_RunReads):
    """Agent runs, usage, suspension and pending tool approvals (see
    docs/services/ai-run-state.md)."""

    async def create_run(
        self,
        *,
        agent_name: str,
        thread_id: str,
        resource_id: str,
        status: AgentRunStatus | str = AgentRunStatus.RUNNING,
        usage: Usage | None = None,
        pending_approvals: Sequence[PendingApproval] = (),
        suspend_reason: SuspendReason | str | None = None,
        missing_rpcs: Sequence[str] | None = None,
        error_message: str | None = None,
    ) -> str:
        """Store a run with its pending approvals; return its UUID4. Raises: `ThreadNotFound`."""
        run = NewAgentRun(
            run_id=new_id(),
            agent_name=v.identifier("agent_name", agent_name),
            thread_id=v.identifier("thread_id", thread_id),
            resource_id=v.identifier("resource_id", resource_id),
            status=v.enum_member(AgentRunStatus, "status", status),
            error_message=v.optional_text("error_message", error_message),
            suspend_reason=_suspend_reason(suspend_reason),
            missing_rpcs=_missing_rpcs(missing_rpcs),
            usage=Usage() if usage is None else _usage(usage),
            pending_approvals=_approvals(pending_approvals),
            now=self._now(),
        )
        await self._create_run(run)
        return run.run_id

    async def update_run(
        self,
        run_id: str,
        *,
        status: AgentRunStatus | str | UnsetType = UNSET,
        error_message: str | UnsetType | None = UNSET,
        suspend_reason: SuspendReason | str | UnsetType | None = UNSET,
        missing_rpcs: Sequence[str] | UnsetType | None = UNSET,
        usage: Usage | UnsetType = UNSET,
        pending_approvals: Sequence[PendingApproval] | UnsetType | None = UNSET,
    ) -> None:
        """Change the given fields atomically and stamp `updated_at`. Raises: `RunNotFound`."""
        run_id, known = _run_id(run_id)
        changes = AgentRunChanges(
            status=UNSET if status is UNSET else v.enum_member(AgentRunStatus, "status", status),
            error_message=(
                UNSET if error_message is UNSET else v.optional_text("error_message", error_message)
            ),
            suspend_reason=UNSET if suspend_reason is UNSET else _suspend_reason(suspend_reason),
            missing_rpcs=UNSET if missing_rpcs is UNSET else _missing_rpcs(missing_rpcs),
            usage=UNSET if usage is UNSET else _usage(usage),
            pending_approvals=(
                UNSET if pending_approvals is UNSET else _approvals(pending_approvals)
            ),
        )
        if not known:
            raise RunNotFound(run_id)
        await self._update_run(run_id, changes, self._now())

    async def get_run(self, run_id: str) -> AgentRun | None:
        """The run with its pending set, or `None`."""
        run_id, known = _run_id(run_id)
        return await self._get_run(run_id) if known else None

    async def get_runs_by_thread(self, thread_id: str) -> list[AgentRun]:
        """The thread's runs in run order (newest first, ties later-created first)."""
        return await self._get_runs_by_thread(v.identifier("thread_id", thread_id))

    async def resolve_approval(
        self, tool_call_id: str, status: ApprovalStatus | str, *, run_id: str | None = None
    ) -> bool:
        """Claim the pending approvals of `tool_call_id` (only `run_id`'s when given) and log
        the decision; `True` iff this call claimed one (docs/services/ai-run-state.md)."""
        v.identifier("tool_call_id", tool_call_id)
        checked = v.enum_member(ApprovalStatus, "status", status)
        if run_id is not None:
            run_id, known = _run_id(run_id)
            if not known:
                return False
        return await self._resolve_approval(tool_call_id, checked, run_id, self._now())

    async def find_run_by_tool_call_id(
        self, tool_call_id: str
    ) -> tuple[AgentRun, PendingApproval] | None:
        """The most recently created run pending on this tool call, with the approval."""
        return await self._find_run_by_tool_call_id(v.identifier("tool_call_id", tool_call_id))

    async def get_approval_decisions(self, run_id: str) -> list[ResolvedApproval]:
        """The run's decision log in claim order."""
        run_id, known = _run_id(run_id)
        return await self._get_approval_decisions(run_id) if known else []

    async def save_score(
        self,
        run_id: str,
        scorer_name: str,
        score: float,
        *,
        reason: str | None = None,
        metadata: JsonInputObject | None = None,
    ) -> AgentRunScore:
        """Append one grade of the run and return it as `get_scores` will.

        Scores are an append-only log: a scorer may grade a run any number of times, and
        neither the run's nor its thread's `updated_at` moves (docs/services/ai-run-state.md
        #scores). Raises: `RunNotFound` (checked in the same atomic write).
        """
        run_id, known = _run_id(run_id)
        new = NewScore(
            run_id=run_id,
            scorer_name=v.identifier("scorer_name", scorer_name),
            score=_score(score),
            reason=v.optional_text("reason", reason),
            metadata=None if metadata is None else encode_object(metadata, "metadata"),
            now=self._now(),
        )
        if not known:
            raise RunNotFound(run_id)
        await self._save_score(new)
        return AgentRunScore(
            run_id=new.run_id,
            scorer_name=new.scorer_name,
            score=new.score,
            reason=new.reason,
            metadata=None if new.metadata is None else decode(new.metadata),  # type: ignore[arg-type]  # an object by encode_object
            created_at=new.now,
        )

    async def get_scores(self, run_id: str) -> list[AgentRunScore]:
        """The run's scores, `created_at` ascending, ties in save order; unknown run `[]`."""
        run_id, known = _run_id(run_id)
        return await self._get_scores(run_id) if known else []

    @abstractmethod
    async def _create_run(self, run: NewAgentRun) -> None:
        """Raises `ThreadNotFound`."""

    @abstractmethod
    async def _update_run(self, run_id: str, changes: AgentRunChanges, now: datetime) -> None:
        """Raises `RunNotFound`; replaces the pending set by difference."""

    @abstractmethod
    async def _get_run(self, run_id: str) -> AgentRun | None: ...

    @abstractmethod
    async def _resolve_approval(
        self, tool_call_id: str, status: ApprovalStatus, run_id: str | None, now: datetime
    ) -> bool: ...

    @abstractmethod
    async def _find_run_by_tool_call_id(
        self, tool_call_id: str
    ) -> tuple[AgentRun, PendingApproval] | None: ...

    @abstractmethod
    async def _get_approval_decisions(self, run_id: str) -> list[ResolvedApproval]: ...

    @abstractmethod
    async def _save_score(self, score: NewScore) -> None:
        """Append the score; raises `RunNotFound(run_id)`, checked in the same atomic write."""

    @abstractmethod
    async def _get_scores(self, run_id: str) -> list[AgentRunScore]:
        """The run's scores in `created_at` order, ties by insertion; built with
        `pikku_storage._build.agent_run_score`."""


class AgentRunService(_ThreadReads, _RunReads):
    """Console queries over threads and runs, deletion and retention (see
    docs/services/agent-runs.md)."""

    async def list_threads(
        self,
        *,
        agent_name: str | None = None,
        resource_id: str | None = None,
        owners: Sequence[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Thread]:
        """Threads in thread order, filtered before paging.

        `owners` is an authorization constraint, not a filter: a thread passes iff its
        `resource_id` is an owner or starts with `owner + ":"`; `[]` matches nothing
        (docs/services/agent-runs.md#owners).
        """
        agent = v.optional_identifier("agent_name", agent_name)
        resource = v.optional_identifier("resource_id", resource_id)
        checked_owners = None if owners is None else check_owners(owners)
        limit, offset = v.limit_offset(limit, offset)
        if checked_owners is not None and not checked_owners:
            return []
        return await self._list_threads(agent, resource, checked_owners, limit, offset)

    async def get_thread(self, thread_id: str) -> Thread | None:
        """The thread or `None`."""
        return await self._get_thread(v.identifier("thread_id", thread_id))

    async def get_thread_messages(self, thread_id: str) -> list[Message]:
        """Exactly `AIStorageService.get_messages(thread_id)`."""
        return rebuild(await self._get_messages(v.identifier("thread_id", thread_id), None, None))

    async def get_thread_runs(self, thread_id: str) -> list[AgentRunRow]:
        """The thread's runs as flat rows in run order."""
        runs = await self._get_runs_by_thread(v.identifier("thread_id", thread_id))
        return [
            AgentRunRow(
                run_id=run.run_id,
                agent_name=run.agent_name,
                thread_id=run.thread_id,
                resource_id=run.resource_id,
                status=run.status,
                error_message=run.error_message,
                suspend_reason=run.suspend_reason,
                missing_rpcs=run.missing_rpcs,
                usage_input_tokens=run.usage.input_tokens,
                usage_output_tokens=run.usage.output_tokens,
                usage_model=run.usage.model,
                created_at=run.created_at,
                updated_at=run.updated_at,
            )
            for run in runs
        ]

    async def delete_thread(self, thread_id: str) -> bool:
        """The cascade of `AIStorageService.delete_thread`; `True` if the thread existed."""
        return await self._delete_thread(v.identifier("thread_id", thread_id))

    async def get_distinct_agent_names(self) -> list[str]:
        """Every agent name with a stored run, in code-point order."""
        return await self._get_distinct_agent_names()

    async def prune_threads(self, *, updated_before: datetime, batch_size: int = 1000) -> int:
        """Delete threads updated strictly before the cutoff, in atomic batches; the count."""
        cutoff = v.aware_cutoff("updated_before", updated_before)
        return await self._prune_threads(cutoff, v.batch_size(batch_size))

    @abstractmethod
    async def _list_threads(
        self,
        agent_name: str | None,
        resource_id: str | None,
        owners: list[str] | None,
        limit: int,
        offset: int,
    ) -> list[Thread]:
        """`owners`: `None` for no constraint, else deduplicated and non-empty; each owner is
        matched by an exact key plus `pikku_storage._owners.owner_bounds(owner)`."""

    @abstractmethod
    async def _get_distinct_agent_names(self) -> list[str]: ...

    @abstractmethod
    async def _prune_threads(self, cutoff: datetime, batch_size: int) -> int: ...
