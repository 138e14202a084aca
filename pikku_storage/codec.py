"""The one JSON codec: validation that names the offending path, encoding, decoding, copying.

Every payload crosses this module before any write, so a non-JSON value raises `InvalidValue`
on every backend alike and what is stored is always this module's text (see
docs/concepts.md#values).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

from pikku_storage.errors import InvalidValue

__all__ = [
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
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

MAX_JSON_DEPTH: Final = 128
"""Containers (lists and objects) a stored JSON document may nest; `[[1]]` is 2 deep."""
MAX_INT_DIGITS: Final = 4300
"""Decimal digits of the largest int a payload may hold (CPython's int-to-text limit)."""

_INT_LIMIT: Final = 10**MAX_INT_DIGITS
_SAFE_INT_BITS: Final = 14_284  # 2**14284 < 10**4300: shorter ints need no comparison

_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _make_encode() -> Callable[[object, int], Iterable[str]]:
    """The C encoder `_ENCODER.encode` builds on every call, built once (CPython), else the
    pure-Python path. No cycle markers: `check_json` bounds the depth, so no cycle gets here."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover  # interpreters without the C accelerator
        return lambda value, _level: (_ENCODER.encode(value),)
    encode: Callable[[object, int], Iterable[str]] = make(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    return encode


_ENCODE: Final = _make_encode()
_DECODER: Final = json.JSONDecoder()
# The C scanner without decode()'s whitespace regexes (typeshed does not declare it).
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


def check_text(value: str, path: str) -> None:
    """Reject a string holding an unpaired surrogate, which no UTF-8 store can hold (D3)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValue(f"{path}: string contains an unpaired surrogate") from None


def check_json(value: object, path: str) -> None:
    """Raise `InvalidValue` naming the path of the first part of `value` that is not JSON.

    Also refused: nesting deeper than `MAX_JSON_DEPTH` containers (so every read decodes far
    below the interpreter's recursion limit) and ints of more than `MAX_INT_DIGITS` digits
    (CPython cannot write them as text). The common case, a valid value, takes a fast pass that
    builds no path; only a failing value is walked again to name the path.
    """
    if not _valid(value, MAX_JSON_DEPTH):  # the fast pass refuses some valid subclasses
        _find_problem(value, path, MAX_JSON_DEPTH)


def _valid(value: Any, depth: int) -> bool:  # Any: narrowed by exact type() tests
    """True iff `value` is JSON within `depth` levels of containers; builds nothing.

    Scalars inside a container are tested inline (no call per element): a payload is mostly
    leaves, and a call per leaf was most of a small payload's check.
    """
    kind = type(value)
    if kind is dict:
        if depth == 0:
            return False
        depth -= 1
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or _encodable(key)):
                return False
            kind = type(item)
            if kind is str:
                if not (item.isascii() or _encodable(item)):
                    return False
            elif kind is int:
                if item.bit_length() > _SAFE_INT_BITS and abs(item) >= _INT_LIMIT:
                    return False
            elif kind is float:
                if not _isfinite(item):
                    return False
            elif item is not None and kind is not bool and not _valid(item, depth):
                return False
        return True
    if kind is list:
        if depth == 0:
            return False
        depth -= 1
        for item in value:
            kind = type(item)
            if kind is str:
                if not (item.isascii() or _encodable(item)):
                    return False
            elif kind is int:
                if item.bit_length() > _SAFE_INT_BITS and abs(item) >= _INT_LIMIT:
                    return False
            elif kind is float:
                if not _isfinite(item):
                    return False
            elif item is not None and kind is not bool and not _valid(item, depth):
                return False
        return True
    if kind is str:
        return bool(value.isascii()) or _encodable(value)
    if kind is int:
        return bool(value.bit_length() <= _SAFE_INT_BITS or abs(value) < _INT_LIMIT)
    if value is None or kind is bool:
        return True
    if kind is float:
        return _isfinite(value)
    return False  # another type, or a subclass of a JSON type: `_find_problem` decides


_isfinite: Final = math.isfinite
_IMMUTABLE: Final = frozenset((str, int, float, bool, type(None)))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _find_problem(value: object, path: str, depth: int) -> None:
    """Raise `InvalidValue` for the first part of `value` that is not JSON, naming its path."""
    if value is None or value is True or value is False:
        return
    if isinstance(value, str):
        check_text(value, path)
    elif isinstance(value, int):
        if value.bit_length() > _SAFE_INT_BITS and abs(value) >= _INT_LIMIT:
            raise InvalidValue(f"{path}: int has more than {MAX_INT_DIGITS} digits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue(f"{path}: {value!r} is not a JSON number")
    elif isinstance(value, list | dict):
        if depth == 0:
            shown = path if len(path) <= 100 else f"{path[:48]}…{path[-48:]}"
            raise InvalidValue(f"{shown}: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, list):
            for index, item in enumerate(value):
                _find_problem(item, f"{path}[{index}]", depth - 1)
            return
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValue(f"{path}: key {key!r} is not a string")
            check_text(key, f"{path} key {key!r}")
            _find_problem(item, f"{path}[{key!r}]", depth - 1)
    else:
        raise InvalidValue(f"{path}: {type(value).__name__} is not a JSON value")


def encode(value: object, path: str) -> str:
    """Validate `value` and return its JSON text; `path` names it in errors (`input`, `data`)."""
    check_json(value, path)
    try:
        return "".join(_ENCODE(value, 0))
    except ValueError as exc:  # an interpreter run with a lower int-to-text digit limit
        raise InvalidValue(f"{path}: {exc}") from None


def encode_object(value: object, path: str) -> str:
    """Like `encode`, for a value that must be a JSON object (a `dict`)."""
    if not isinstance(value, dict):
        raise InvalidValue(f"{path}: expected a JSON object, got {type(value).__name__}")
    return encode(value, path)


def encode_optional(value: object, path: str) -> str | None:
    """Like `encode`, but `None` stays `None` (SQL NULL, an absent field)."""
    return None if value is None else encode(value, path)


def decode(text: str | bytes) -> JsonValue:
    """Parse text this codec wrote.

    Text this codec wrote nests at most `MAX_JSON_DEPTH` levels, far below the interpreter's
    recursion limit; a deeper document (stored by a version without the limit) raises
    `InvalidValue`, never a raw `RecursionError`.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        try:
            value, end = _SCAN(text, 0)  # this codec's text: no whitespace around the value
        except StopIteration:
            end = -1
        if end != len(text):  # other text (whitespace, trailing data): the full decoder
            value = _DECODER.decode(text)
    except RecursionError:
        raise InvalidValue(
            f"stored JSON is nested too deep to read (the limit is {MAX_JSON_DEPTH} levels)"
        ) from None
    result: JsonValue = value
    return result


def decode_optional(text: str | bytes | None) -> JsonValue:
    """Parse text this codec wrote; `None` (SQL NULL, an absent field) reads as `None`."""
    return None if text is None else decode(text)


def copy_json(value: JsonValue) -> JsonValue:
    """A deep copy of a validated JSON value, sharing nothing with it.

    Scalars are immutable and returned as they are; a container is copied in C
    (`dict.copy`, `list.copy`) and only its nested containers are copied again, so a flat
    payload costs one copy.
    """
    kind = type(value)
    if kind is dict:
        assert isinstance(value, dict)
        copied = value.copy()
        for key, item in copied.items():
            if type(item) not in _IMMUTABLE:
                copied[key] = copy_json(item)  # replaces a value: the dict keeps its size
        return copied
    if kind is list:
        assert isinstance(value, list)
        items = value.copy()
        for index, item in enumerate(items):
            if type(item) not in _IMMUTABLE:
                items[index] = copy_json(item)
        return items
    if kind in _IMMUTABLE:
        return value
    if isinstance(value, list):  # subclasses of the containers: copied as plain ones
        return [copy_json(item) for item in value]
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    return value
