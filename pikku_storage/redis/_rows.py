"""Redis replies to records: one function per record type, and the reply readers they use.

Replies are bytes or `str` depending on the client's `decode_responses`; everything here
accepts both. Timestamps are epoch milliseconds, payloads codec JSON text, and an absent hash
field is `None` (see docs/operations.md#storage-layout; style §6).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Final, cast

from pikku_storage import _build
from pikku_storage._serial import (
    decode_approval,
    decode_content,
    decode_missing_rpcs,
    decode_planned_steps,
)
from pikku_storage.clock import from_epoch_ms
from pikku_storage.codec import JsonObject, JsonValue, decode, decode_optional
from pikku_storage.interfaces.ai import StoredMessage, StoredToolCall
from pikku_storage.interfaces.workflows import GraphStep
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
from pikku_storage.redis._keys import thread_member_id

__all__ = [
    "RUN_FIELDS",
    "STEP_FIELDS",
    "Reader",
    "agent_run",
    "agent_run_score",
    "channel_and_session",
    "deployment_info",
    "graph_step",
    "history_entry",
    "ms",
    "pairs",
    "pending_approvals",
    "resolved_approval",
    "run_step",
    "split_fields",
    "stalled_runs",
    "step_instance",
    "step_state",
    "stored_messages",
    "strings",
    "text",
    "thread",
    "undispatched_steps",
    "workflow_run",
    "workflow_runs",
    "workflow_version",
]

# the run hash fields a WorkflowRun needs, in `wf_list_runs`'s order
RUN_FIELDS: Final = (
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

# the live-step fields a StepState needs (claim and retry scripts return these)
STEP_FIELDS: Final = (
    "status",
    "result",
    "error",
    "attempt",
    "retries",
    "retry_delay",
    "created_at",
    "updated_at",
    "running_at",
    "scheduled_at",
    "succeeded_at",
    "failed_at",
    "rpc_name",
    "from_step_name",
    "child_run_id",
)


def text(value: object) -> str:
    """A reply element as `str` (bytes are UTF-8; integers are formatted)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"unexpected Redis reply element: {type(value).__name__}")


def strings(reply: object) -> list[str]:
    """A flat reply of bulk strings as `str`s, in one pass (bytes are UTF-8)."""
    items = cast("list[bytes | str]", reply)
    return [item.decode() if isinstance(item, bytes) else item for item in items]


def pairs(flat: object) -> dict[str, str]:
    """A flat `[field, value, ...]` reply, or an HGETALL mapping, as a `str` dict."""
    if isinstance(flat, Mapping):
        return {text(k): text(val) for k, val in flat.items()}
    items = cast("list[object]", flat)
    return {text(items[i]): text(items[i + 1]) for i in range(0, len(items), 2)}


def split_fields(flat: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`<id>:<field>` hash fields grouped by id (ids here are UUIDs: no colon)."""
    grouped: dict[str, dict[str, str]] = {}
    for key, value in flat.items():
        owner, _, name = key.partition(":")
        grouped.setdefault(owner, {})[name] = value
    return grouped


class Reader:
    """Sequential reader of a flat script reply."""

    __slots__ = ("_items", "_pos")

    def __init__(self, reply: object) -> None:
        self._items = cast("list[object]", reply)
        self._pos = 0

    def __bool__(self) -> bool:
        return self._pos < len(self._items)

    def take(self) -> str:
        item = self._items[self._pos]
        self._pos += 1
        return text(item)

    def take_int(self) -> int:
        return int(self.take())

    def take_list(self) -> list[str]:
        """A counted list: its length, then its elements."""
        return [self.take() for _ in range(self.take_int())]

    def rest(self) -> list[str]:
        """Every element not read yet."""
        found = [text(item) for item in self._items[self._pos :]]
        self._pos = len(self._items)
        return found

    def take_pairs(self) -> dict[str, str]:
        """A counted flat `[field, value, ...]`."""
        flat = self.take_list()
        return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


_MS_CACHE: Final = 4096  # recent stamps kept: a page repeats them (created == updated, polls)
_stamps: dict[str, datetime] = {}


def ms(value: str) -> datetime:
    """A stored epoch-millisecond field (or a zset score, which Redis may write as `1e12`).

    Conversions are kept by text (a `datetime` is immutable, so sharing one aliases nothing).
    """
    found = _stamps.get(value)
    if found is None:
        try:
            found = from_epoch_ms(int(value))
        except ValueError:
            found = from_epoch_ms(int(float(value)))
        if len(_stamps) >= _MS_CACHE:
            _stamps.clear()
        _stamps[value] = found
    return found


def _opt_ms(value: str | None) -> datetime | None:
    return None if value is None else ms(value)


def _opt_object(value: str | None) -> JsonObject | None:
    return cast("JsonObject | None", decode_optional(value))


# --- workflows --------------------------------------------------------------------------------


def workflow_run(run_id: str, values: Sequence[object]) -> WorkflowRun:
    """A run from the HMGET of its `RUN_FIELDS` (`None` for an absent field)."""
    return _runs(strings([run_id, *("" if value is None else value for value in values)]))[0]


_RUN_WIDTH: Final = 13


def workflow_runs(reply: object) -> list[WorkflowRun]:
    """The runs of a `wf_list_runs` reply: 13 NUL-separated fields per run, "" if absent."""
    joined = text(reply)
    return _runs(joined.split("\0") if joined else [])


def _runs(items: Sequence[str]) -> list[WorkflowRun]:
    columns: list[_build.RunColumns] = []
    for i in range(0, len(items), _RUN_WIDTH):
        run_id, workflow, status, input_, output, error, inline, graph_hash, wire = items[i : i + 9]
        columns.append(
            (
                run_id,
                workflow,
                status,
                input_ or None,
                output or None,
                error or None,
                inline == "1",
                graph_hash or None,
                wire,
                ms(items[i + 9]),
                ms(items[i + 10]),
            )
        )
    runs = _build.workflow_runs(columns)
    for run, i in zip(runs, range(0, len(items), _RUN_WIDTH), strict=True):
        # 05 §3.1 fields; a run written by layout 1 has neither (False, [])
        run.deterministic = items[i + 11] == "1"
        run.planned_steps = decode_planned_steps(items[i + 12] or None)
    return runs


def _step_common(f: Mapping[str, str]) -> dict[str, object]:
    retries = f.get("retries")
    retry_delay = f.get("retry_delay")
    return {
        "status": StepStatus(f["status"]),
        "result": decode_optional(f.get("result")),
        "error": _opt_object(f.get("error")),
        "retries": None if retries is None else int(retries),
        "retry_delay": None if retry_delay is None else decode(retry_delay),
        "created_at": ms(f["created_at"]),
        "updated_at": ms(f["updated_at"]),
        "running_at": _opt_ms(f.get("running_at")),
        "scheduled_at": _opt_ms(f.get("scheduled_at")),
        "succeeded_at": _opt_ms(f.get("succeeded_at")),
        "failed_at": _opt_ms(f.get("failed_at")),
        "rpc_name": f.get("rpc_name"),
        "from_step_name": f.get("from_step_name"),
        "child_run_id": f.get("child_run_id"),
    }


def step_state(step_id: str, f: Mapping[str, str]) -> StepState:
    """The live step from its unprefixed fields."""
    return StepState(step_id=step_id, attempt_count=int(f["attempt"]), **_step_common(f))  # type: ignore[arg-type]  # typed by _step_common's keys


def run_step(step_id: str, f: Mapping[str, str]) -> RunStep:
    return RunStep(
        step_id=step_id,
        attempt_count=int(f["attempt"]),
        step_name=f["name"],
        data=decode_optional(f.get("data")),
        **_step_common(f),  # type: ignore[arg-type]  # typed by _step_common's keys
    )


def history_entry(
    step_id: str, attempt: int, a: Mapping[str, str], step: Mapping[str, str]
) -> StepHistoryEntry:
    """One attempt: its own status, outcome and stamps, the step's name and retry policy."""
    merged = dict(a)
    for key in ("retries", "retry_delay", "rpc_name", "from_step_name"):
        if key in step:
            merged[key] = step[key]
    return StepHistoryEntry(
        step_id=step_id,
        attempt_count=attempt,
        step_name=step["name"],
        **_step_common(merged),  # type: ignore[arg-type]  # typed by _step_common's keys
    )


def graph_step(f: Mapping[str, str]) -> GraphStep:
    retries = f.get("retries")
    return GraphStep(
        step_name=f["name"],
        status=StepStatus(f["status"]),
        attempt_count=int(f["attempt"]),
        retries=None if retries is None else int(retries),
        branch_taken=f.get("branch"),
    )


def workflow_version(stored: str) -> WorkflowVersion:
    """A version's JSON; one written by layout 1 has no `status` (`active`)."""
    data = cast("dict[str, JsonValue]", decode(stored))
    source, status = data["source"], data.get("status", "active")
    assert isinstance(source, str)
    assert isinstance(status, str)
    return WorkflowVersion(graph=data["graph"], source=source, status=WorkflowVersionStatus(status))


def step_instance(step_id: str, f: Mapping[str, str]) -> StepInstance:
    return StepInstance(
        step_id=step_id,
        step_name=f["name"],
        status=StepStatus(f["status"]),
        from_step_name=f.get("from_step_name"),
    )


def stalled_runs(reply: object) -> list[StalledRun]:
    """Triples run id, idle_since ms, workflow of a `wf_find_stalled` reply."""
    items = strings(reply)
    return [
        StalledRun(run_id=items[i], workflow=items[i + 2], idle_since=ms(items[i + 1]))
        for i in range(0, len(items), 3)
    ]


def undispatched_steps(reply: object) -> list[UndispatchedStep]:
    """Six fields per step of a `wf_find_undispatched` reply."""
    items = strings(reply)
    return [
        UndispatchedStep(
            run_id=items[i + 1],
            step_id=items[i],
            step_name=items[i + 3],
            rpc_name=items[i + 5] if items[i + 4] == "1" else None,
            pending_since=ms(items[i + 2]),
        )
        for i in range(0, len(items), 6)
    ]


# --- AI ----------------------------------------------------------------------------------------


def thread(h: Mapping[str, str]) -> Thread:
    return Thread(
        id=h["id"],
        resource_id=h["resource_id"],
        title=h.get("title"),
        metadata=_opt_object(h.get("metadata")),
        created_at=ms(h["created_at"]),
        updated_at=ms(h["updated_at"]),
    )


def _pending_entry(stored: str) -> tuple[int, PendingApproval]:
    data = cast("dict[str, JsonValue]", decode(stored))
    kind, payload, position = data["kind"], data["payload"], data["position"]
    assert isinstance(kind, str)
    assert isinstance(payload, str)
    assert isinstance(position, int)
    return position, decode_approval(kind, payload)


def pending_approvals(pending: Mapping[str, str]) -> list[PendingApproval]:
    """A run's pending set in its stored order (each entry carries its position)."""
    entries = sorted((_pending_entry(value) for value in pending.values()), key=lambda e: e[0])
    return [approval for _, approval in entries]


def agent_run(h: Mapping[str, str], pending: Mapping[str, str]) -> AgentRun:
    reason = h.get("suspend_reason")
    return AgentRun(
        run_id=h["run_id"],
        agent_name=h["agent_name"],
        thread_id=h["thread_id"],
        resource_id=h["resource_id"],
        status=AgentRunStatus(h["status"]),
        error_message=h.get("error_message"),
        suspend_reason=None if reason is None else SuspendReason(reason),
        missing_rpcs=decode_missing_rpcs(h.get("missing_rpcs")),
        pending_approvals=pending_approvals(pending),
        usage=Usage(
            input_tokens=int(h["usage_input_tokens"]),
            output_tokens=int(h["usage_output_tokens"]),
            model=h["usage_model"],
        ),
        created_at=ms(h["created_at"]),
        updated_at=ms(h["updated_at"]),
    )


def resolved_approval(run_id: str, entry: str) -> ResolvedApproval:
    """A decision-log entry `<status>:<resolved_at ms>:<pending JSON>`."""
    status, resolved_at, stored = entry.split(":", 2)
    return ResolvedApproval(
        run_id=run_id,
        approval=_pending_entry(stored)[1],
        status=ApprovalStatus(status),
        resolved_at=ms(resolved_at),
    )


_ROLE: Final = MessageRole._value2member_map_


def stored_messages(reply: object) -> list[StoredMessage]:
    """The messages of an `ai_get_messages` reply, their blobs parsed in one call.

    Per message: its blob (id, role, text, parts, created_at, tool_calls, and `reasoning` and
    `interrupted` when set), then a counted flat list of its answered calls' ids, results and
    undelivered flags.
    """
    items = [text(item) for item in cast("list[object]", reply)]
    blobs: list[str | None] = []
    answered: list[dict[str, tuple[str, bool]]] = []
    i, end = 0, len(items)
    while i < end:
        blobs.append(items[i])
        n = int(items[i + 1])
        answered.append(
            {items[j]: (items[j + 1], items[j + 2] == "1") for j in range(i + 2, i + 2 + n, 3)}
        )
        i += 2 + n
    messages = []
    for data, results in zip(_build.decode_page(blobs), answered, strict=True):
        assert isinstance(data, dict)
        parts, created, calls = data.get("parts"), data["created_at"], data.get("tool_calls")
        assert isinstance(created, int)
        assert calls is None or isinstance(calls, list)
        messages.append(
            StoredMessage(
                id=cast(str, data["id"]),
                role=cast(MessageRole, _ROLE[cast(str, data["role"])]),
                content=decode_content(
                    cast("str | None", data.get("text")), cast("str | None", parts)
                ),
                created_at=from_epoch_ms(created),
                tool_calls=[_stored_call(call, results) for call in calls] if calls else [],
                reasoning_content=cast("str | None", data.get("reasoning")),
                interrupted=data.get("interrupted") is True,
            )
        )
    return messages


def _stored_call(call: JsonValue, results: Mapping[str, tuple[str, bool]]) -> StoredToolCall:
    assert isinstance(call, dict)
    call_id = cast(str, call["id"])
    found = results.get(call_id)
    return StoredToolCall(
        id=call_id,
        name=cast(str, call["name"]),
        args=cast("JsonObject", decode(cast(str, call["args"]))),
        result=None if found is None else found[0],
        undelivered=False if found is None else found[1],
    )


def agent_run_score(run_id: str, member: str, score: float) -> AgentRunScore:
    """One entry of a run's scores zset: member `<seq16>:<JSON>`, score `created_at` ms."""
    data = cast("dict[str, JsonValue]", decode(thread_member_id(member)))
    reason, metadata = data.get("reason"), data.get("metadata")
    return _build.agent_run_score(
        run_id,
        cast(str, data["scorer"]),
        float(cast(str, data["score"])),
        cast("str | None", reason),
        cast("str | None", metadata),
        ms(str(int(score))),
    )


# --- channels and deployments ---------------------------------------------------------------


def channel_and_session(channel_id: str, h: Mapping[str, str]) -> ChannelAndSession:
    return ChannelAndSession(
        channel_id=channel_id,
        channel_name=h["name"],
        opening_data=decode(h["opening"]),
        session=_opt_object(h.get("session")),
    )


def deployment_info(reader: Reader) -> Iterator[DeploymentInfo]:
    """Triples `deployment id, score, endpoint` of a deployments script reply."""
    while reader:
        deployment_id, score, endpoint = reader.take(), reader.take(), reader.take()
        yield DeploymentInfo(
            deployment_id=deployment_id, endpoint=endpoint, last_heartbeat=ms(score)
        )
