"""Messages between `save_messages`/`get_messages` and the hooks: the validated batch a
backend stores and the stored rows it reads back, rebuilt here into the upstream shape.

Step 1 of docs/services/ai-storage.md (shape and flags) runs in `prepare_batch`; `rebuild`
adds the synthetic tool-result messages, so every backend returns the same shape.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from pikku_storage import _validate as v
from pikku_storage._build import record_builder
from pikku_storage._serial import encode_content
from pikku_storage.codec import JsonObject, encode_object
from pikku_storage.errors import ConflictError, InvalidValue
from pikku_storage.records import Message, MessageRole, ToolCall, ToolResult

__all__ = [
    "SYNTHETIC_PREFIX",
    "MessageBatch",
    "NewMessage",
    "NewToolCall",
    "StoredMessage",
    "StoredToolCall",
    "prepare_batch",
    "rebuild",
]

SYNTHETIC_PREFIX: Final = "tool-results-"


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class NewToolCall:
    tool_call_id: str
    name: str
    args: str


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class NewMessage:
    """A non-tool message to store; `position` is its place among the batch's stored messages."""

    message_id: str
    role: MessageRole
    content_text: str | None
    content_parts: str | None
    created_at: datetime
    tool_calls: tuple[NewToolCall, ...]
    reasoning_content: str | None  # assistant only (docs/services/ai-storage.md#message-fields)
    interrupted: bool  # assistant only


@dataclass(slots=True, kw_only=True)  # not frozen: 5x cheaper to build per call
class MessageBatch:
    """A validated `save_messages` list (docs/services/ai-storage.md step 1 done).

    The hook checks, in order: the thread exists (`ThreadNotFound`), then raises
    `batch_conflict` if set, then stored message ids and tool-call ids (`ConflictError`), then
    that every id in `external_result_ids` is a stored call of the thread
    (`InvalidValue.unmatched_tool_result`). Then, unless `empty`, it stores `messages` with
    consecutive sequence numbers, their calls in order, sets `results` (call id -> text, the
    later result already chosen) and sets the thread's `updated_at` to `now`. A result whose
    id is in `undelivered_results` is stored with the undelivered flag, every other one of
    `results` with the flag cleared (text and flag are replaced together).
    """

    messages: tuple[NewMessage, ...]
    results: dict[str, str]
    undelivered_results: frozenset[str]
    external_result_ids: tuple[str, ...]
    batch_conflict: ConflictError | None
    empty: bool
    now: datetime  # the call's one clock reading: the new `updated_at`

    @property
    def tool_calls(self) -> list[NewToolCall]:
        return [call for message in self.messages for call in message.tool_calls]

    def check_stored(
        self,
        thread_id: str,
        stored_messages: Container[str],
        stored_calls: Container[str],
        answerable: Container[str],
    ) -> None:
        """Steps 3 and 4 of docs/services/ai-storage.md against what the thread stores, in
        batch order: `batch_conflict`, then a stored message id, then a stored tool-call id
        (`ConflictError`), then a result for a call the thread does not hold
        (`InvalidValue.unmatched_tool_result`). The one home of that order for backends that
        check in Python; the Redis script keeps the same order in Lua."""
        if self.batch_conflict is not None:
            raise self.batch_conflict
        for message in self.messages:
            if message.message_id in stored_messages:
                raise ConflictError.message(thread_id, message.message_id)
        for message in self.messages:
            for call in message.tool_calls:
                if call.tool_call_id in stored_calls:
                    raise ConflictError.tool_call(thread_id, call.tool_call_id)
        for call_id in self.external_result_ids:
            if call_id not in answerable:
                raise InvalidValue.unmatched_tool_result(thread_id, call_id)


@dataclass(slots=True, kw_only=True)
class StoredToolCall:
    id: str
    name: str
    args: JsonObject
    result: str | None = None
    undelivered: bool = False  # the stored result's flag (meaningless without a result)


@dataclass(slots=True, kw_only=True)
class StoredMessage:
    """A stored message as a backend reads it, its calls in call order."""

    id: str
    role: MessageRole
    content: str | list[JsonObject] | None
    created_at: datetime
    tool_calls: list[StoredToolCall] = field(default_factory=list)
    reasoning_content: str | None = None
    interrupted: bool = False


_new_message: Final = record_builder(NewMessage)
_new_batch: Final = record_builder(MessageBatch)
_new_record: Final = record_builder(Message)


def _records(field_name: str, value: object, kind: type[object]) -> list[object]:
    if type(value) is list and not value:
        return []  # the common case (no tool calls or results): nothing to check or copy
    if not isinstance(value, list | tuple):
        raise InvalidValue(f"{field_name} must be a list of {kind.__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, kind):
            raise InvalidValue(f"{field_name}[{index}] must be a {kind.__name__}")
    return list(value)


_NO_IDS: Final[frozenset[str]] = frozenset()


def _message_flags(message: Message, role: MessageRole) -> tuple[str | None, bool, bool]:
    """`reasoning_content`, `interrupted`, `undelivered` checked against the role: the first two
    only on assistant messages, `undelivered=True` only on tool messages (`None`/`False` fit
    any role; docs/services/ai-storage.md#message-fields)."""
    reasoning = message.reasoning_content
    interrupted = message.interrupted
    undelivered = message.undelivered
    if reasoning is None and interrupted is False and undelivered is False:
        return None, False, False  # the common case
    v.boolean(".interrupted", interrupted)
    v.boolean(".undelivered", undelivered)
    if reasoning is not None:
        v.plain_text(".reasoning_content", reasoning)
        if role is not MessageRole.ASSISTANT:
            raise InvalidValue(".reasoning_content is allowed only on assistant messages")
    if interrupted and role is not MessageRole.ASSISTANT:
        raise InvalidValue(".interrupted is allowed only on assistant messages")
    if undelivered and role is not MessageRole.TOOL:
        raise InvalidValue(".undelivered is allowed only on tool messages")
    return reasoning, interrupted, undelivered


def prepare_batch(thread_id: str, messages: object, now: datetime) -> MessageBatch:
    """Step 1 of docs/services/ai-storage.md (shape), plus what can be known of duplicates without
    storage."""
    if type(messages) is not list and (
        isinstance(messages, str | bytes) or not isinstance(messages, Sequence)
    ):
        raise InvalidValue("messages must be a sequence of Message")
    stored: list[NewMessage] = []
    results: dict[str, str] = {}
    undelivered: set[str] = set()
    conflict: ConflictError | None = None
    seen_messages: set[str] = set()
    seen_calls: set[str] = set()
    for index, message in enumerate(messages):
        # Paths are relative to the message: an error gets its "messages[i]" prefix
        # below, so a valid batch builds no path strings.
        try:
            if not isinstance(message, Message):
                raise InvalidValue(f" must be a Message, got {type(message).__name__}")
            message_id = v.identifier(".id", message.id)
            role = v.enum_member(MessageRole, ".role", message.role)
            created_at = (
                now
                if message.created_at is None
                else v.aware_cutoff(".created_at", message.created_at)
            )
            calls = _records(".tool_calls", message.tool_calls, ToolCall)
            tool_results = _records(".tool_results", message.tool_results, ToolResult)
            reasoning, interrupted, message_undelivered = _message_flags(message, role)
            if role is MessageRole.TOOL:
                if message.content is not None or calls:
                    raise InvalidValue(": a tool message carries only tool_results")
                for r_index, result in enumerate(tool_results):
                    assert isinstance(result, ToolResult)
                    r_path = f".tool_results[{r_index}]"
                    call_id = v.identifier(f"{r_path}.id", result.id)
                    v.plain_text(f"{r_path}.name", result.name)
                    flag = v.boolean(f"{r_path}.undelivered", result.undelivered)
                    results.pop(call_id, None)  # keep "later wins" in dict order too
                    results[call_id] = v.plain_text(f"{r_path}.result", result.result)
                    if message_undelivered or flag:
                        undelivered.add(call_id)
                    else:
                        undelivered.discard(call_id)
                continue
            if tool_results:
                raise InvalidValue(": only tool messages carry tool_results")
            if message_id.startswith(SYNTHETIC_PREFIX):
                raise InvalidValue(f".id must not start with {SYNTHETIC_PREFIX!r}")
            if calls and role is not MessageRole.ASSISTANT:
                raise InvalidValue(": only assistant messages carry tool_calls")
            text, parts = encode_content(message.content, ".content")
            new_calls: list[NewToolCall] = []
            for c_index, call in enumerate(calls):
                assert isinstance(call, ToolCall)
                c_path = f".tool_calls[{c_index}]"
                call_id = v.identifier(f"{c_path}.id", call.id)
                new_calls.append(
                    NewToolCall(
                        tool_call_id=call_id,
                        name=v.identifier(f"{c_path}.name", call.name),
                        args=encode_object(call.args, f"{c_path}.args"),
                    )
                )
                if call_id in seen_calls and conflict is None:
                    conflict = ConflictError.tool_call(thread_id, call_id)
                seen_calls.add(call_id)
            if message_id in seen_messages and conflict is None:
                conflict = ConflictError.message(thread_id, message_id)
            seen_messages.add(message_id)
            stored.append(
                _new_message(
                    message_id=message_id,
                    role=role,
                    content_text=text,
                    content_parts=parts,
                    created_at=created_at,
                    tool_calls=tuple(new_calls) if new_calls else (),
                    reasoning_content=reasoning,
                    interrupted=interrupted,
                )
            )
        except InvalidValue as exc:
            raise InvalidValue(f"messages[{index}]{exc}") from None
    return _new_batch(
        messages=tuple(stored),
        results=results,
        undelivered_results=frozenset(undelivered) if undelivered else _NO_IDS,
        external_result_ids=tuple(call_id for call_id in results if call_id not in seen_calls)
        if results
        else (),
        batch_conflict=conflict,
        empty=not messages,
        now=now,
    )


def rebuild(stored: list[StoredMessage]) -> list[Message]:
    """Stored messages to the upstream shape: each answered assistant gets a synthetic tool
    message right after it (docs/services/ai-storage.md get_messages)."""
    out: list[Message] = []
    for message in stored:
        calls = message.tool_calls
        out.append(
            _new_record(
                id=message.id,
                role=message.role,
                content=message.content,
                tool_calls=[ToolCall(id=c.id, name=c.name, args=c.args) for c in calls]
                if calls
                else [],
                created_at=message.created_at,
                reasoning_content=message.reasoning_content,
                interrupted=message.interrupted,
            )
        )
        if not calls:
            continue
        results = [
            ToolResult(id=c.id, name=c.name, result=c.result, undelivered=c.undelivered)
            for c in calls
            if c.result is not None
        ]
        if results:
            out.append(
                Message(
                    id=SYNTHETIC_PREFIX + message.id,
                    role=MessageRole.TOOL,
                    content=None,
                    tool_results=results,
                    created_at=message.created_at,
                    undelivered=all(result.undelivered for result in results),
                )
            )
    return out
