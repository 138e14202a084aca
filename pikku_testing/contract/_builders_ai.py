"""Builders with defaults for the AI contract tests, and the "nothing written" snapshot
(docs/contract.md)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import pytest

from pikku_storage import Storage
from pikku_storage.clock import TEST_START
from pikku_storage.codec import JsonObject, JsonValue
from pikku_storage.errors import ThreadNotFound
from pikku_storage.records import (
    AgentCallApproval,
    AgentRun,
    AgentRunStatus,
    Message,
    MessageRole,
    PendingApproval,
    ResolvedApproval,
    SuspendReason,
    Thread,
    ToolCall,
    ToolCallApproval,
    ToolResult,
    Usage,
    WorkingMemoryScope,
)

__all__ = [
    "NON_JSON",
    "SCALARS",
    "T0",
    "UNKNOWN_RUN_ID",
    "Snapshot",
    "agent_approval",
    "assert_cascaded",
    "assistant",
    "at",
    "call",
    "expected_run",
    "is_uuid4",
    "json_identical",
    "make_run",
    "make_thread",
    "populate",
    "result",
    "snapshot",
    "stored",
    "synthetic",
    "system",
    "tool",
    "tool_approval",
    "user",
    "wrong",
]

# A canonical UUID4 that no test creates: an unknown run id with a stable test id (xdist).
UNKNOWN_RUN_ID: Final = "6f1c2a3e-9b4d-4c5e-8f70-123456789abc"

T0: Final = TEST_START
"""The instant `pikku_clock` starts at."""


def at(ms: int) -> datetime:
    """`T0` plus `ms` milliseconds."""
    return T0 + timedelta(milliseconds=ms)


def user(
    message_id: str = "m-1",
    content: str | list[JsonObject] | None = "Hello",
    *,
    created_at: datetime | None = None,
) -> Message:
    return Message(id=message_id, role=MessageRole.USER, content=content, created_at=created_at)


def system(
    message_id: str = "sys-1",
    content: str | None = "Be brief",
    *,
    created_at: datetime | None = None,
) -> Message:
    return Message(id=message_id, role=MessageRole.SYSTEM, content=content, created_at=created_at)


def assistant(
    message_id: str = "a-1",
    content: str | list[JsonObject] | None = None,
    *,
    calls: Sequence[ToolCall] = (),
    created_at: datetime | None = None,
) -> Message:
    return Message(
        id=message_id,
        role=MessageRole.ASSISTANT,
        content=content,
        tool_calls=list(calls),
        created_at=created_at,
    )


def call(call_id: str = "tc-1", name: str = "search", args: JsonObject | None = None) -> ToolCall:
    return ToolCall(id=call_id, name=name, args={"query": "test"} if args is None else args)


def result(call_id: str = "tc-1", text: str = "found it", name: str = "search") -> ToolResult:
    return ToolResult(id=call_id, name=name, result=text)


def tool(
    *results: ToolResult, message_id: str = "tool-1", created_at: datetime | None = None
) -> Message:
    """A tool message carrying `results` (validated, never stored itself)."""
    return Message(
        id=message_id, role=MessageRole.TOOL, tool_results=list(results), created_at=created_at
    )


def stored(message: Message, created_at: datetime = T0) -> Message:
    """`message` as `get_messages` returns it: `created_at` set, no `tool_results`."""
    return Message(
        id=message.id,
        role=message.role,
        content=message.content,
        tool_calls=list(message.tool_calls),
        created_at=message.created_at if message.created_at is not None else created_at,
    )


def synthetic(
    assistant_id: str, results: Sequence[ToolResult], created_at: datetime = T0
) -> Message:
    """The synthetic tool message `get_messages` emits after an answered assistant."""
    return Message(
        id="tool-results-" + assistant_id,
        role=MessageRole.TOOL,
        content=None,
        tool_results=list(results),
        created_at=created_at,
    )


def tool_approval(
    call_id: str = "tc-1", tool_name: str = "search", args: JsonValue = None
) -> ToolCallApproval:
    return ToolCallApproval(
        tool_call_id=call_id,
        tool_name=tool_name,
        args={"query": "test"} if args is None else args,
    )


def agent_approval(
    call_id: str = "tc-2", agent_run_id: str = "sub-run", display_args: JsonValue = None
) -> AgentCallApproval:
    return AgentCallApproval(
        tool_call_id=call_id,
        agent_name="helper",
        agent_run_id=agent_run_id,
        display_tool_name="delete_file",
        display_args={"path": "/tmp/x"} if display_args is None else display_args,
    )


async def make_thread(
    storage: Storage,
    thread_id: str = "t-1",
    resource_id: str = "res-1",
    *,
    title: str | None = None,
    metadata: JsonObject | None = None,
) -> Thread:
    return await storage.ai_storage.create_thread(
        resource_id, thread_id=thread_id, title=title, metadata=metadata
    )


async def make_run(
    storage: Storage,
    thread_id: str = "t-1",
    agent_name: str = "agent-a",
    resource_id: str = "res-1",
    *,
    status: AgentRunStatus | str = AgentRunStatus.RUNNING,
    usage: Usage | None = None,
    pending_approvals: Sequence[PendingApproval] = (),
    suspend_reason: SuspendReason | str | None = None,
    missing_rpcs: Sequence[str] | None = None,
    error_message: str | None = None,
) -> str:
    return await storage.ai_run_state.create_run(
        agent_name=agent_name,
        thread_id=thread_id,
        resource_id=resource_id,
        status=status,
        usage=usage,
        pending_approvals=pending_approvals,
        suspend_reason=suspend_reason,
        missing_rpcs=missing_rpcs,
        error_message=error_message,
    )


def expected_run(
    run_id: str,
    *,
    thread_id: str = "t-1",
    agent_name: str = "agent-a",
    resource_id: str = "res-1",
    status: AgentRunStatus = AgentRunStatus.RUNNING,
    error_message: str | None = None,
    suspend_reason: SuspendReason | None = None,
    missing_rpcs: list[str] | None = None,
    pending_approvals: Sequence[PendingApproval] = (),
    usage: Usage | None = None,
    created_at: datetime = T0,
    updated_at: datetime | None = None,
) -> AgentRun:
    """The `AgentRun` a default `make_run` stores, with the given fields."""
    return AgentRun(
        run_id=run_id,
        agent_name=agent_name,
        thread_id=thread_id,
        resource_id=resource_id,
        status=status,
        error_message=error_message,
        suspend_reason=suspend_reason,
        missing_rpcs=missing_rpcs,
        pending_approvals=list(pending_approvals),
        usage=Usage() if usage is None else usage,
        created_at=created_at,
        updated_at=created_at if updated_at is None else updated_at,
    )


@dataclass(slots=True, kw_only=True)
class Snapshot:
    """What the public API shows of some threads and resources, to prove nothing was written."""

    threads: list[Thread | None]
    messages: list[list[Message]]
    runs: list[list[AgentRun]]
    decisions: list[list[ResolvedApproval]]
    thread_memory: list[JsonObject | None]
    resource_memory: list[JsonObject | None]
    listed: list[Thread]
    agent_names: list[str]


async def snapshot(
    storage: Storage,
    thread_ids: Sequence[str] = ("t-1",),
    resource_ids: Sequence[str] = ("res-1",),
    *,
    namespace: bool = True,
) -> Snapshot:
    """Read everything the public API shows of `thread_ids` and `resource_ids`, and with
    `namespace` also the thread list and the agent names of the whole namespace."""
    ai, state, console = storage.ai_storage, storage.ai_run_state, storage.agent_runs
    runs = [await state.get_runs_by_thread(thread_id) for thread_id in thread_ids]
    return Snapshot(
        threads=[await console.get_thread(thread_id) for thread_id in thread_ids],
        messages=[await ai.get_messages(thread_id) for thread_id in thread_ids],
        runs=runs,
        decisions=[
            await state.get_approval_decisions(run.run_id) for group in runs for run in group
        ],
        thread_memory=[
            await ai.get_working_memory(thread_id, WorkingMemoryScope.THREAD)
            for thread_id in thread_ids
        ],
        resource_memory=[
            await ai.get_working_memory(resource_id, WorkingMemoryScope.RESOURCE)
            for resource_id in resource_ids
        ],
        listed=await console.list_threads(limit=1000) if namespace else [],
        agent_names=await console.get_distinct_agent_names() if namespace else [],
    )


def is_uuid4(value: str) -> bool:
    """True iff `value` is a canonical UUID4 string."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value


def wrong(value: object) -> Any:
    """`value` typed as anything: an argument of the wrong type, passed on purpose."""
    return value


def json_identical(actual: object, expected: object) -> bool:
    """Equal and of the same JSON types all the way down (`0` is not `False`, `-0.0` not `0.0`)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            json_identical(actual[key], expected[key]) for key in actual
        )
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            json_identical(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, float) and isinstance(expected, float):
        return actual == expected and math.copysign(1.0, actual) == math.copysign(1.0, expected)
    return actual == expected


async def populate(storage: Storage) -> str:
    """Thread `t-1` with messages, two runs, a decision and memory, next to thread `t-2`.

    Returns the id of `t-1`'s run of `solo-agent`, pending on `tc-2` and holding a decision on
    `tc-3`; `shared-agent` has runs on both threads; resource `res-1` has memory.
    """
    ai, state = storage.ai_storage, storage.ai_run_state
    await make_thread(storage, "t-1")
    await make_thread(storage, "t-2")
    await ai.save_messages(
        "t-1",
        [user("m-1"), assistant("a-1", calls=[call("tc-1"), call("tc-2")]), tool(result("tc-1"))],
    )
    await ai.save_messages("t-2", [user("m-1")])
    run_id = await make_run(
        storage,
        "t-1",
        "solo-agent",
        pending_approvals=[tool_approval("tc-2"), tool_approval("tc-3")],
    )
    assert await state.resolve_approval("tc-3", "approved")
    await make_run(storage, "t-1", "shared-agent")
    await make_run(storage, "t-2", "shared-agent", pending_approvals=[tool_approval("tc-9")])
    await ai.save_working_memory("t-1", WorkingMemoryScope.THREAD, {"notes": "t-1"})
    await ai.save_working_memory("t-2", WorkingMemoryScope.THREAD, {"notes": "t-2"})
    await ai.save_working_memory("res-1", WorkingMemoryScope.RESOURCE, {"profile": 1})
    return run_id


async def assert_cascaded(storage: Storage, run_id: str, thread_id: str = "t-1") -> None:
    """Assert the whole cascade of docs/services/ai-storage.md delete_thread for a thread built by
    `populate`."""
    ai, state, console = storage.ai_storage, storage.ai_run_state, storage.agent_runs
    with pytest.raises(ThreadNotFound):
        await ai.get_thread(thread_id)
    assert await console.get_thread(thread_id) is None
    assert await ai.get_messages(thread_id) == []
    assert await state.get_run(run_id) is None
    assert await state.get_runs_by_thread(thread_id) == []
    assert await console.get_thread_runs(thread_id) == []
    assert await state.find_run_by_tool_call_id("tc-2") is None
    assert await state.resolve_approval("tc-2", "approved") is False
    assert await state.get_approval_decisions(run_id) == []
    assert await ai.get_working_memory(thread_id, WorkingMemoryScope.THREAD) is None
    assert await ai.get_working_memory("res-1", WorkingMemoryScope.RESOURCE) == {"profile": 1}
    assert await console.get_distinct_agent_names() == ["shared-agent"]


NON_JSON: Final[dict[str, object]] = {
    "set": {1, 2},
    "bytes": b"x",
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "datetime": T0,
    "non-string key": {1: "x"},
    "object": object(),
}
"""Values the codec refuses anywhere in a JSON payload (docs/concepts.md#values)."""

SCALARS: Final[JsonObject] = {
    "zero": 0,
    "false": False,
    "neg-zero": -0.0,
    "big": 2**80,
    "neg-big": -(2**80),
    "float": 1.5,
    "1e16": 1e16,
    "list": [0, False, -0.0, 2**80, 1.5, None, "", [], {}],
}
"""JSON values whose type a careless store changes (docs/concepts.md#values item 55)."""
