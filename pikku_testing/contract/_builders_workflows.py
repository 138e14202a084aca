"""Builders, sample values and checks shared by the workflow contract tests (see
docs/contract.md)."""

from __future__ import annotations

import dataclasses
import functools
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Final

import pytest

from pikku_storage import Storage
from pikku_storage.clock import TEST_START
from pikku_storage.codec import JsonObject, JsonValue
from pikku_storage.errors import InvalidValue
from pikku_storage.records import (
    PlannedStep,
    RunStep,
    StepHistoryEntry,
    StepState,
    StepStatus,
    WorkflowRun,
    WorkflowRunWire,
    WorkflowStatus,
)

__all__ = [
    "BAD_IDENTIFIERS",
    "LONG_ID",
    "NON_JSON_VALUES",
    "ROUND_TRIP_VALUES",
    "T0",
    "assert_gone",
    "assert_invariant",
    "deep_value",
    "expect_invalid",
    "expected_run",
    "expected_step",
    "history_entry",
    "is_uuid4",
    "json_identical",
    "new_run",
    "new_step",
    "non_canonical_ids",
    "run_step",
    "scribble",
    "snapshot",
    "step_mutators",
    "stored_error",
    "unknown_id",
]

T0: Final = TEST_START
"""The instant the `pikku_clock` fixture starts at."""

LONG_ID: Final = "x" * 255
BAD_IDENTIFIERS: Final[tuple[str, ...]] = ("", "x" * 256, "a\x00b", "a\ud800b")
"""Empty, 256 characters, U+0000 and a lone surrogate: `InvalidValue` everywhere
(docs/concepts.md#values)."""


def deep_value(depth: int = 40) -> JsonValue:
    """A JSON value nested `depth` levels, alternating lists and objects."""
    value: JsonValue = "leaf"
    for level in range(depth):
        value = [value, level] if level % 2 else {"k": value, "n": level}
    return value


ROUND_TRIP_VALUES: Final[tuple[JsonValue, ...]] = (
    0,
    False,
    "",
    [],
    {},
    None,
    2**100,
    1e16,
    0.1,
    -0.0,
    deep_value(),
    "\u0000",
    "héllo wörld 名前 😀 e\u0301",
    {"mixed": [1, 1.5, True, None, "s", {"x": []}]},
)
"""Values whose type and value must survive every payload exactly (docs/concepts.md#values)."""

NON_JSON_VALUES: Final[tuple[object, ...]] = (
    {1, 2},
    b"bytes",
    datetime(2020, 1, 1, tzinfo=UTC),
    object(),
    {1: "non-string key"},
    math.nan,
    math.inf,
    "lone \ud800 surrogate",
)
"""Values the codec refuses (docs/concepts.md#values)."""


def json_identical(actual: object, expected: object) -> bool:
    """Equality that also compares types: `False` is not `0`, `1e16` is not `10**16`, `-0.0`
    is not `0.0` (plain `==` would accept all three)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(actual, float):
        assert isinstance(expected, float)
        return repr(actual) == repr(expected)
    if isinstance(actual, list):
        assert isinstance(expected, list)
        return len(actual) == len(expected) and all(
            json_identical(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict):
        assert isinstance(expected, dict)
        return actual.keys() == expected.keys() and all(
            json_identical(actual[key], expected[key]) for key in actual
        )
    return actual == expected


def is_uuid4(value: object) -> bool:
    """True for a canonical UUID4 string."""
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return str(parsed) == value and parsed.version == 4


def unknown_id() -> str:
    """A canonical UUID4 that names nothing."""
    return str(uuid.uuid4())


def non_canonical_ids(existing: str) -> list[str]:
    """Spellings of an existing id that are not canonical, plus ids that are not UUIDs (D2)."""
    return [existing.upper(), "{" + existing + "}", "x", "a:b"]


async def new_run(
    storage: Storage,
    workflow: str = "wf",
    input: JsonValue = None,
    *,
    inline: bool = False,
    graph_hash: str | None = None,
    wire: WorkflowRunWire | None = None,
) -> str:
    """Create a run with defaults and return its id."""
    return await storage.workflows.create_run(
        workflow, input, inline=inline, graph_hash=graph_hash, wire=wire
    )


async def new_step(
    storage: Storage,
    run_id: str,
    name: str = "step",
    *,
    rpc_name: str | None = None,
    data: JsonValue = None,
    retries: int | None = None,
    retry_delay: int | str | None = None,
    from_step_name: str | None = None,
) -> StepState:
    """Insert a step with defaults and return its live state."""
    return await storage.workflows.insert_step_state(
        run_id,
        name,
        rpc_name,
        data,
        retries=retries,
        retry_delay=retry_delay,
        from_step_name=from_step_name,
    )


def expected_run(
    run_id: str,
    *,
    workflow: str = "wf",
    status: WorkflowStatus = WorkflowStatus.RUNNING,
    input: JsonValue = None,
    output: JsonValue = None,
    error: JsonObject | None = None,
    inline: bool = False,
    graph_hash: str | None = None,
    wire: WorkflowRunWire | None = None,
    created_at: datetime = T0,
    updated_at: datetime | None = None,
    deterministic: bool = False,
    planned_steps: list[PlannedStep] | None = None,
) -> WorkflowRun:
    """The run record a test expects; `updated_at` defaults to `created_at`."""
    return WorkflowRun(
        id=run_id,
        workflow=workflow,
        status=status,
        input=input,
        output=output,
        error=error,
        inline=inline,
        graph_hash=graph_hash,
        wire=wire if wire is not None else WorkflowRunWire(type="unknown"),
        created_at=created_at,
        updated_at=updated_at if updated_at is not None else created_at,
        deterministic=deterministic,
        planned_steps=list(planned_steps or []),
    )


def expected_step(
    step_id: str,
    *,
    status: StepStatus = StepStatus.PENDING,
    result: JsonValue = None,
    error: JsonObject | None = None,
    attempt_count: int = 1,
    retries: int | None = None,
    retry_delay: int | str | None = None,
    created_at: datetime = T0,
    updated_at: datetime | None = None,
    running_at: datetime | None = None,
    scheduled_at: datetime | None = None,
    succeeded_at: datetime | None = None,
    failed_at: datetime | None = None,
    rpc_name: str | None = None,
    from_step_name: str | None = None,
    child_run_id: str | None = None,
) -> StepState:
    """The live step state a test expects; `updated_at` defaults to `created_at`."""
    return StepState(
        step_id=step_id,
        status=status,
        result=result,
        error=error,
        attempt_count=attempt_count,
        retries=retries,
        retry_delay=retry_delay,
        created_at=created_at,
        updated_at=updated_at if updated_at is not None else created_at,
        running_at=running_at,
        scheduled_at=scheduled_at,
        succeeded_at=succeeded_at,
        failed_at=failed_at,
        rpc_name=rpc_name,
        from_step_name=from_step_name,
        child_run_id=child_run_id,
    )


def history_entry(state: StepState, step_name: str) -> StepHistoryEntry:
    """The history entry equal to a live state (same fields plus the step's name)."""
    return StepHistoryEntry(
        step_id=state.step_id,
        step_name=step_name,
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
        rpc_name=state.rpc_name,
        from_step_name=state.from_step_name,
        child_run_id=state.child_run_id,
    )


def run_step(
    state: StepState, step_name: str, *, rpc_name: str | None = None, data: JsonValue = None
) -> RunStep:
    """The console view of a live state (`rpc_name` defaults to the state's)."""
    return RunStep(
        step_id=state.step_id,
        step_name=step_name,
        rpc_name=rpc_name if rpc_name is not None else state.rpc_name,
        from_step_name=state.from_step_name,
        child_run_id=state.child_run_id,
        data=data,
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
    )


def stored_error(
    message: str,
    *,
    name: str | None = None,
    stack: str | None = None,
    code: str | int | None = None,
    **extras: JsonValue,
) -> JsonObject:
    """A stored error object: always the four keys of docs/services/workflows.md#transitions, plus a
    mapping's extras."""
    return {"message": message, "name": name, "stack": stack, "code": code, **extras}


async def snapshot(
    storage: Storage,
    run_ids: Sequence[str] = (),
    versions: Sequence[tuple[str, str]] = (),
) -> list[object]:
    """Everything a test namespace shows through the public API about the given runs and
    versions, plus every run and name; two equal snapshots mean nothing was written."""
    runs = storage.workflow_runs
    seen: list[object] = [
        await runs.list_runs(limit=1000),
        await runs.get_distinct_workflow_names(),
    ]
    for run_id in run_ids:
        seen += [
            await runs.get_run(run_id),
            await storage.workflows.get_run_state(run_id),
            await runs.get_run_steps(run_id),
            await runs.get_run_history(run_id),
        ]
    for name, graph_hash in versions:
        seen.append(await runs.get_workflow_version(name, graph_hash))
    return seen


async def assert_gone(storage: Storage, run_id: str) -> None:
    """Nothing of the run is readable: no run, state, steps or history, and no list entry."""
    assert await snapshot(storage, [run_id]) == [
        await storage.workflow_runs.list_runs(limit=1000),
        await storage.workflow_runs.get_distinct_workflow_names(),
        None,
        {},
        [],
        [],
    ]
    listed = await storage.workflow_runs.list_runs(limit=1000)
    assert run_id not in [run.id for run in listed]


async def assert_invariant(storage: Storage, run_id: str) -> None:
    """docs/services/workflows.md#claim-and-retry: per step, `attempt_count` equals its number of
    history entries, and the live
    status, outcome and stamps equal the entry numbered `attempt_count`."""
    history = await storage.workflow_runs.get_run_history(run_id)
    for step in await storage.workflow_runs.get_run_steps(run_id):
        entries = [entry for entry in history if entry.step_id == step.step_id]
        assert sorted(entry.attempt_count for entry in entries) == list(
            range(1, step.attempt_count + 1)
        )
        (current,) = [entry for entry in entries if entry.attempt_count == step.attempt_count]
        live = (step.status, step.result, step.error, step.running_at, step.scheduled_at)
        assert live == (
            current.status,
            current.result,
            current.error,
            current.running_at,
            current.scheduled_at,
        )
        assert (step.succeeded_at, step.failed_at) == (current.succeeded_at, current.failed_at)
        assert (current.step_name, current.retries, current.retry_delay) == (
            step.step_name,
            step.retries,
            step.retry_delay,
        )


async def expect_invalid(
    label: str, call: Callable[..., Awaitable[object]], *args: object
) -> InvalidValue:
    """Await `call(*args)` and return the `InvalidValue` it raises; fail naming `label` if it
    raises nothing or something else (the call itself may raise before returning a coroutine).
    """
    try:
        await call(*args)
    except InvalidValue as exc:
        return exc
    except Exception as exc:  # reported with the label below
        pytest.fail(f"{label}: expected InvalidValue, got {exc!r}")
    pytest.fail(f"{label}: expected InvalidValue, nothing was raised")


def step_mutators(storage: Storage, step_id: str) -> dict[str, Callable[[], Awaitable[object]]]:
    """Every method that mutates one step by id, bound to `step_id` (docs/services/workflows.md's
    table)."""
    wf = storage.workflows
    return {
        "set_step_running": functools.partial(wf.set_step_running, step_id),
        "set_step_scheduled": functools.partial(wf.set_step_scheduled, step_id),
        "set_step_result": functools.partial(wf.set_step_result, step_id, 1),
        "set_step_error": functools.partial(wf.set_step_error, step_id, {"message": "m"}),
        "claim_step": functools.partial(wf.claim_step, step_id),
        "create_retry_attempt(pending)": functools.partial(
            wf.create_retry_attempt, step_id, "pending"
        ),
        "create_retry_attempt(running)": functools.partial(
            wf.create_retry_attempt, step_id, "running"
        ),
        "set_branch_taken": functools.partial(wf.set_branch_taken, step_id, "b"),
    }


def scribble(value: object) -> None:
    """Mutate everything a read returned, deeply, as a careless caller would
    (docs/concepts.md#values)."""
    if isinstance(value, list):
        for item in value:
            scribble(item)
        value.append("scribbled")
    elif isinstance(value, dict):
        for item in value.values():
            scribble(item)
        value["scribbled"] = True
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            scribble(getattr(value, field.name))
            setattr(value, field.name, "scribbled")
