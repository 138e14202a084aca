"""Record <-> JSON text conversions that every backend stores alike (errors, wires, approvals,
message content); built on the codec so there is one encoding of each."""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from pikku_storage import _validate as v
from pikku_storage.codec import JsonObject, JsonValue, check_json, decode, encode
from pikku_storage.errors import InvalidValue
from pikku_storage.records import (
    AgentCallApproval,
    CredentialRequestApproval,
    CredentialType,
    PendingApproval,
    PlannedStep,
    ToolCallApproval,
    WorkflowRunWire,
)

__all__ = [
    "MAX_CONNECT_URL",
    "UNKNOWN_WIRE",
    "EncodedApproval",
    "ErrorInput",
    "decode_approval",
    "decode_content",
    "decode_missing_rpcs",
    "decode_planned_steps",
    "decode_wire",
    "encode_approval",
    "encode_content",
    "encode_error",
    "encode_missing_rpcs",
    "encode_planned_steps",
    "encode_wire",
]

ErrorInput: TypeAlias = "BaseException | Mapping[str, JsonValue]"

MAX_CONNECT_URL: Final = 2048

_ERROR_KEYS = ("message", "name", "stack", "code")


def encode_error(error: object, path: str = "error") -> str:
    """Serialize an exception or mapping to the stored error object (see
    docs/services/workflows.md#transitions, D10)."""
    if isinstance(error, BaseException):
        code = getattr(error, "code", None)
        if code is not None and (isinstance(code, bool) or not isinstance(code, str | int)):
            code = str(code)
        stored: dict[str, object] = {
            "message": str(error),
            "name": type(error).__name__,
            "stack": "".join(traceback.format_exception(error)),
            "code": code,
        }
        return encode(stored, path)
    if not isinstance(error, Mapping):
        raise InvalidValue(f"{path} must be an exception or a mapping, got {type(error).__name__}")
    message = error.get("message")
    if not isinstance(message, str):
        raise InvalidValue(f"{path} mapping must hold a str 'message'")
    for key in ("name", "stack"):
        if error.get(key) is not None and not isinstance(error.get(key), str):
            raise InvalidValue(f"{path}[{key!r}] must be a str or None")
    code = error.get("code")
    if code is not None and (isinstance(code, bool) or not isinstance(code, str | int)):
        raise InvalidValue(f"{path}['code'] must be a str, an int or None")
    stored = {key: error.get(key) for key in _ERROR_KEYS}
    for key, value in error.items():
        if key not in stored:
            stored[key] = value
    return encode(stored, path)


UNKNOWN_WIRE: Final = '{"type":"unknown","id":null,"parent_run_id":null}'
"""The stored text of `wire=None` (D9), a constant: no validation per call."""


def encode_wire(wire: object) -> str:
    """Validate a `WorkflowRunWire` (or `None`, stored as type "unknown", D9) to JSON text."""
    if wire is None:
        return UNKNOWN_WIRE
    if not isinstance(wire, WorkflowRunWire):
        raise InvalidValue(f"wire must be a WorkflowRunWire or None, got {type(wire).__name__}")
    fields: JsonObject = {
        "type": v.identifier("wire.type", wire.type),
        "id": v.optional_identifier("wire.id", wire.id),
        "parent_run_id": v.optional_identifier("wire.parent_run_id", wire.parent_run_id),
    }
    # 05 §3.1: the new keys are omitted when None, so old wires and new ones read alike.
    parent_step = v.optional_identifier("wire.parent_step_id", wire.parent_step_id)
    if parent_step is not None:
        fields["parent_step_id"] = parent_step
    user = v.optional_identifier("wire.pikku_user_id", wire.pikku_user_id)
    if user is not None:
        fields["pikku_user_id"] = user
    return encode(fields, "wire")


def decode_wire(text: str | bytes) -> WorkflowRunWire:
    """Rebuild a wire from its stored JSON; keys an older store never wrote read `None`."""
    if text == UNKNOWN_WIRE:  # the stored `wire=None` (most runs): nothing to parse
        return WorkflowRunWire(type="unknown")
    data = decode(text)
    assert isinstance(data, dict)
    wire_type, wire_id, parent = data["type"], data.get("id"), data.get("parent_run_id")
    parent_step, user = data.get("parent_step_id"), data.get("pikku_user_id")
    assert isinstance(wire_type, str)
    assert wire_id is None or isinstance(wire_id, str)
    assert parent is None or isinstance(parent, str)
    assert parent_step is None or isinstance(parent_step, str)
    assert user is None or isinstance(user, str)
    return WorkflowRunWire(
        type=wire_type,
        id=wire_id,
        parent_run_id=parent,
        parent_step_id=parent_step,
        pikku_user_id=user,
    )


def encode_missing_rpcs(names: Sequence[str] | None) -> str | None:
    """An agent run's `missing_rpcs` (validated by the interface) as stored: JSON text, or
    `None` for none."""
    return None if names is None else encode(list(names), "missing_rpcs")


def decode_missing_rpcs(text: str | bytes | None) -> list[str] | None:
    """The stored `missing_rpcs` back as a list of names (`None` stays `None`)."""
    if text is None:
        return None
    data = decode(text)
    assert isinstance(data, list)
    return [str(name) for name in data]


EMPTY_PLAN: Final = "[]"
"""The stored text of `planned_steps=None` (05 §3.1)."""


def encode_planned_steps(steps: object) -> str:
    """Validate `None` or a list/tuple of `PlannedStep` to JSON text (order and duplicates kept)."""
    if steps is None:
        return EMPTY_PLAN
    if not isinstance(steps, list | tuple):
        raise InvalidValue(
            f"planned_steps must be a list or tuple of PlannedStep, got {type(steps).__name__}"
        )
    items: list[JsonValue] = []
    for index, step in enumerate(steps):
        path = f"planned_steps[{index}]"
        if not isinstance(step, PlannedStep):
            raise InvalidValue(f"{path} must be a PlannedStep, got {type(step).__name__}")
        items.append(
            {
                "step_name": v.identifier(f"{path}.step_name", step.step_name),
                "display_name": v.optional_text(f"{path}.display_name", step.display_name),
            }
        )
    return encode(items, "planned_steps") if items else EMPTY_PLAN


def decode_planned_steps(text: str | bytes | None) -> list[PlannedStep]:
    """Rebuild the plan from its stored JSON; `None` (an older row) reads `[]`."""
    if text is None or text == EMPTY_PLAN:
        return []
    data = decode(text)
    assert isinstance(data, list)
    steps: list[PlannedStep] = []
    for item in data:
        assert isinstance(item, dict)
        name, display = item["step_name"], item.get("display_name")
        assert isinstance(name, str)
        assert display is None or isinstance(display, str)
        steps.append(PlannedStep(step_name=name, display_name=display))
    return steps


@dataclass(frozen=True, slots=True)
class EncodedApproval:
    """A pending approval as stored: its kind and the JSON of its other fields
    (docs/operations.md#storage-layout)."""

    tool_call_id: str
    kind: str
    payload: str


def encode_approval(approval: object, path: str) -> EncodedApproval:
    """Validate one pending approval record and encode it."""
    if isinstance(approval, ToolCallApproval):
        fields: JsonObject = {
            "tool_call_id": v.identifier(f"{path}.tool_call_id", approval.tool_call_id),
            "tool_name": v.identifier(f"{path}.tool_name", approval.tool_name),
            "args": _json_field(approval.args, f"{path}.args"),
        }
        return EncodedApproval(approval.tool_call_id, ToolCallApproval.TYPE, encode(fields, path))
    if isinstance(approval, AgentCallApproval):
        fields = {
            "tool_call_id": v.identifier(f"{path}.tool_call_id", approval.tool_call_id),
            "agent_name": v.identifier(f"{path}.agent_name", approval.agent_name),
            "agent_run_id": v.identifier(f"{path}.agent_run_id", approval.agent_run_id),
            "display_tool_name": v.identifier(
                f"{path}.display_tool_name", approval.display_tool_name
            ),
            "display_args": _json_field(approval.display_args, f"{path}.display_args"),
        }
        return EncodedApproval(approval.tool_call_id, AgentCallApproval.TYPE, encode(fields, path))
    if isinstance(approval, CredentialRequestApproval):
        return EncodedApproval(
            approval.tool_call_id,
            CredentialRequestApproval.TYPE,
            encode(_credential_fields(approval, path), path),
        )
    raise InvalidValue(
        f"{path} must be a ToolCallApproval, AgentCallApproval or CredentialRequestApproval,"
        f" got {type(approval).__name__}"
    )


def _credential_fields(approval: CredentialRequestApproval, path: str) -> JsonObject:
    """The stored fields of a credential request (docs/services/ai-run-state.md)."""
    connect_url = v.optional_text(f"{path}.connect_url", approval.connect_url)
    if connect_url is not None and len(connect_url) > MAX_CONNECT_URL:
        raise InvalidValue(f"{path}.connect_url is longer than {MAX_CONNECT_URL} characters")
    return {
        "tool_call_id": v.identifier(f"{path}.tool_call_id", approval.tool_call_id),
        "tool_name": v.identifier(f"{path}.tool_name", approval.tool_name),
        "args": _json_field(approval.args, f"{path}.args"),
        "credential_name": v.identifier(f"{path}.credential_name", approval.credential_name),
        "credential_type": v.enum_member(
            CredentialType, f"{path}.credential_type", approval.credential_type
        ).value,
        "connect_url": connect_url,
    }


def _json_field(value: object, path: str) -> JsonValue:
    check_json(value, path)
    return value  # type: ignore[return-value]  # checked by check_json just above


def decode_approval(kind: str, payload: str | bytes) -> PendingApproval:
    """Rebuild a pending approval from its stored kind and JSON."""
    data = decode(payload)
    assert isinstance(data, dict)
    if kind == ToolCallApproval.TYPE:
        return ToolCallApproval(
            tool_call_id=str(data["tool_call_id"]),
            tool_name=str(data["tool_name"]),
            args=data["args"],
        )
    if kind == CredentialRequestApproval.TYPE:
        connect_url = data.get("connect_url")
        return CredentialRequestApproval(
            tool_call_id=str(data["tool_call_id"]),
            tool_name=str(data["tool_name"]),
            args=data["args"],
            credential_name=str(data["credential_name"]),
            credential_type=CredentialType(str(data["credential_type"])),
            connect_url=None if connect_url is None else str(connect_url),
        )
    return AgentCallApproval(
        tool_call_id=str(data["tool_call_id"]),
        agent_name=str(data["agent_name"]),
        agent_run_id=str(data["agent_run_id"]),
        display_tool_name=str(data["display_tool_name"]),
        display_args=data["display_args"],
    )


def encode_content(content: object, path: str) -> tuple[str | None, str | None]:
    """Split message content into (text, parts JSON); both `None` means no content
    (docs/operations.md#storage-layout)."""
    if content is None:
        return None, None
    if type(content) is str and content.isascii() and "\x00" not in content:
        return content, None  # the common case, decided as `plain_text` would
    if isinstance(content, str):
        return v.plain_text(path, content), None
    if not isinstance(content, list):
        raise InvalidValue(f"{path} must be None, a str or a list of parts")
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            raise InvalidValue(f"{path}[{index}] must be a dict")
        if not isinstance(part.get("type"), str):
            raise InvalidValue(f"{path}[{index}] must have a string 'type'")
    return None, encode(content, path)


def decode_content(text: str | None, parts: str | bytes | None) -> str | list[JsonObject] | None:
    if text is not None:
        return text
    if parts is None:
        return None
    decoded = decode(parts)
    assert isinstance(decoded, list)
    return decoded  # type: ignore[return-value]  # the codec wrote a list of objects
