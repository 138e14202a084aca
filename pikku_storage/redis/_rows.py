"""Redis replies to records: one function per record type, and the reply readers they use.

Replies are bytes or `str` depending on the client's `decode_responses`; everything here
accepts both. Timestamps are epoch milliseconds, payloads codec JSON text, and an absent hash
field is `None` (see docs/operations.md#storage-layout; style §6).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, cast

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
    WorkflowStatus,
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
_STATUS: Final = WorkflowStatus._value2member_map_


def workflow_runs(reply: object) -> list[WorkflowRun]:
    """The runs of a `wf_list_runs` reply: 13 NUL-separated fields per run, "" if absent."""
    joined = text(reply)
    return _runs(joined.split("\0") if joined else [])


def _runs(items: list[str]) -> list[WorkflowRun]:
    """Runs from `RUN_WIDTH` fields each: the page's input, output and error texts parsed as
    one JSON array (absent ones as `null`), each distinct wire text parsed once (`_build.wire`)
    and stamps read through `ms`'s cache, looked up here without a call per field."""
    w = _RUN_WIDTH
    texts = [t or "null" for t in items[3::w] + items[4::w] + items[5::w]]
    values = cast("list[JsonValue]", decode(f"[{','.join(texts)}]")) if texts else []
    count = len(texts) // 3
    status_of, stamps, wire_of, new_run = _STATUS, _stamps, _build.wire, _build.new_run
    runs = []
    # one column per slice, zipped: no index arithmetic per field
    for (
        run_id,
        workflow,
        status,
        input_,
        output,
        error,
        inline,
        graph_hash,
        wire,
        created,
        updated,
        deterministic,
        planned,
    ) in zip(
        items[0::w],
        items[1::w],
        items[2::w],
        values[:count],
        values[count : 2 * count],
        values[2 * count :],
        items[6::w],
        items[7::w],
        items[8::w],
        items[9::w],
        items[10::w],
        items[11::w],
        items[12::w],
        strict=True,
    ):
        assert error is None or isinstance(error, dict)
        runs.append(
            new_run(
                id=run_id,
                workflow=workflow,
                status=status_of[status],  # type: ignore[arg-type]  # a WorkflowStatus member
                input=input_,
                output=output,
                error=error,
                inline=inline == "1",
                graph_hash=graph_hash or None,
                wire=wire_of(wire),
                created_at=stamps.get(created) or ms(created),
                updated_at=stamps.get(updated) or ms(updated),
                # 05 §3.1 fields; a run written by layout 1 has neither (False, [])
                deterministic=deterministic == "1",
                planned_steps=[] if planned in ("[]", "") else decode_planned_steps(planned),
            )
        )
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
_ONE: Final = frozenset((1, b"1", "1"))


def stored_messages(reply: object) -> list[StoredMessage]:
    """The messages of an `ai_get_messages` reply, their blobs parsed in one call.

    Per message: its blob (id, role, text, parts, created_at, tool_calls, and `reasoning` and
    `interrupted` when set), then the count of a flat list of its answered calls' ids, results
    and undelivered flags, then that list. The blobs are the codec's own text, so the page is
    joined into one JSON array and parsed once; a message without answered calls costs no
    per-item decoding at all.
    """
    items = cast("list[bytes | str | int]", reply)
    if not items:
        return []
    blobs: list[bytes | str]
    answered: list[dict[str, tuple[str, bool]] | None]
    if not any(items[1::2]):  # no message has an answered call: blob, 0, blob, 0, ...
        blobs = cast("list[bytes | str]", items[0::2])
        answered = [None] * len(blobs)
    else:
        blobs, answered = [], []
        i, end = 0, len(items)
        while i < end:
            blobs.append(cast("bytes | str", items[i]))
            n = int(items[i + 1])
            answered.append(
                {
                    text(items[j]): (text(items[j + 1]), items[j + 2] in _ONE)
                    for j in range(i + 2, i + 2 + n, 3)
                }
                if n
                else None
            )
            i += 2 + n
    first = blobs[0]
    joined = (
        b",".join(cast("list[bytes]", blobs)).decode()
        if isinstance(first, bytes)
        else ",".join(cast("list[str]", blobs))
    )
    # the codec's objects, read by the keys `_message_blob` wrote (a driver-boundary cast)
    page = cast("list[dict[str, Any]]", decode(f"[{joined}]"))
    stamps = _msg_stamps
    messages = []
    for data, results in zip(page, answered, strict=True):
        content = data.get("text")
        if content is None:
            content = decode_content(None, data.get("parts"))
        created = data["created_at"]
        stamp = stamps.get(created)
        if stamp is None:
            if len(stamps) >= _MS_CACHE:
                stamps.clear()
            stamp = stamps[created] = from_epoch_ms(created)
        calls = data.get("tool_calls")
        messages.append(
            StoredMessage(
                id=data["id"],
                role=_ROLE[data["role"]],  # type: ignore[arg-type]  # a MessageRole member
                content=content,
                created_at=stamp,
                tool_calls=[_stored_call(call, results) for call in calls] if calls else [],
                reasoning_content=data.get("reasoning"),
                interrupted=data.get("interrupted") is True,
            )
        )
    return messages


_msg_stamps: dict[int, datetime] = {}  # epoch ms -> datetime, as `ms` keeps them by text


def _stored_call(
    call: dict[str, Any], results: Mapping[str, tuple[str, bool]] | None
) -> StoredToolCall:
    call_id: str = call["id"]
    found = None if results is None else results.get(call_id)
    return StoredToolCall(
        id=call_id,
        name=call["name"],
        args=cast("JsonObject", decode(call["args"])),
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
