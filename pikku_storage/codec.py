"""The one JSON codec: validation that names the offending path, encoding, decoding, copying.

Every payload crosses this module before any write, so a non-JSON value raises `InvalidValue`
on every backend alike and what is stored is always this module's text (Spec: 00 §4).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

from pikku_storage.errors import InvalidValue

__all__ = [
    "JsonInput",
    "JsonInputObject",
    "JsonObject",
    "JsonValue",
    "check_json",
    "check_text",
    "copy_json",
    "decode",
    "decode_optional",
    "encode",
    "encode_object",
    "encode_optional",
]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"
# What a caller may pass: `Mapping`/`Sequence` are covariant, so a payload typed
# `dict[str, int]` or `list[str]` type-checks under `mypy --strict` (`dict`/`list` are
# invariant). At run time an array must still be a `list` and an object a `dict`, so that what
# is read back is what was written; anything else raises `InvalidValue` naming its path.
JsonInput: TypeAlias = (
    "bool | int | float | str | Sequence[JsonInput] | Mapping[str, JsonInput] | None"
)
JsonInputObject: TypeAlias = "Mapping[str, JsonInput]"

_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_DECODER: Final = json.JSONDecoder()


def check_text(value: str, path: str) -> None:
    """Reject a string holding an unpaired surrogate, which no UTF-8 store can hold (D3)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValue(f"{path}: string contains an unpaired surrogate") from None


def check_json(value: object, path: str) -> None:
    """Raise `InvalidValue` naming the path of the first part of `value` that is not JSON."""
    if value is None or value is True or value is False:
        return
    if isinstance(value, str):
        check_text(value, path)
    elif isinstance(value, int):
        return
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue(f"{path}: {value!r} is not a JSON number")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValue(f"{path}: key {key!r} is not a string")
            check_text(key, f"{path} key {key!r}")
            check_json(item, f"{path}[{key!r}]")
    else:
        raise InvalidValue(f"{path}: {type(value).__name__} is not a JSON value")


def encode(value: object, path: str) -> str:
    """Validate `value` and return its JSON text; `path` names it in errors (`input`, `data`)."""
    check_json(value, path)
    return _ENCODER.encode(value)


def encode_object(value: object, path: str) -> str:
    """Like `encode`, for a value that must be a JSON object (a `dict`)."""
    if not isinstance(value, dict):
        raise InvalidValue(f"{path}: expected a JSON object, got {type(value).__name__}")
    return encode(value, path)


def encode_optional(value: object, path: str) -> str | None:
    """Like `encode`, but `None` stays `None` (SQL NULL, an absent field)."""
    return None if value is None else encode(value, path)


def decode(text: str | bytes) -> JsonValue:
    """Parse text this codec wrote."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    result: JsonValue = _DECODER.decode(text)
    return result


def decode_optional(text: str | bytes | None) -> JsonValue:
    """Parse text this codec wrote; `None` (SQL NULL, an absent field) reads as `None`."""
    return None if text is None else decode(text)


def copy_json(value: JsonValue) -> JsonValue:
    """A deep copy of a validated JSON value, sharing nothing with it."""
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    return value
