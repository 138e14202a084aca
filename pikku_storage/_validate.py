"""Argument rules shared by every service; each raises `InvalidValue` before any I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Final, TypeVar

from pikku_storage.clock import truncate_ms
from pikku_storage.codec import check_text
from pikku_storage.errors import InvalidValue

__all__ = [
    "MAX_ID_LENGTH",
    "aware_cutoff",
    "batch_size",
    "boolean",
    "enum_member",
    "identifier",
    "identifier_list",
    "limit_offset",
    "namespace",
    "non_negative_int",
    "optional_identifier",
    "optional_text",
    "plain_text",
    "positive_seconds",
    "table_prefix",
    "timeout",
]

MAX_ID_LENGTH: Final = 255
MAX_BATCH_SIZE: Final = 10_000
MAX_LIMIT: Final = 1000

E = TypeVar("E", bound=StrEnum)


def identifier(field: str, value: object) -> str:
    """A non-empty `str` of at most 255 characters, without U+0000 or lone surrogates."""
    if not isinstance(value, str):
        raise InvalidValue(f"{field} must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidValue(f"{field} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidValue(f"{field} is longer than {MAX_ID_LENGTH} characters")
    if "\x00" in value:
        raise InvalidValue(f"{field} must not contain U+0000")
    check_text(value, field)
    return value


def optional_identifier(field: str, value: object) -> str | None:
    return None if value is None else identifier(field, value)


def plain_text(field: str, value: object) -> str:
    """Text of any length (`""` allowed) without U+0000 or lone surrogates."""
    if not isinstance(value, str):
        raise InvalidValue(f"{field} must be a str, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidValue(f"{field} must not contain U+0000")
    check_text(value, field)
    return value


def optional_text(field: str, value: object) -> str | None:
    return None if value is None else plain_text(field, value)


def identifier_list(field: str, values: object) -> list[str]:
    """A sequence of identifiers; a bare `str` or `bytes` is refused (D12)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidValue(f"{field} must be a sequence of strings, not {type(values).__name__}")
    return [identifier(f"{field}[{index}]", item) for index, item in enumerate(values)]


def boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"{field} must be a bool, got {type(value).__name__}")
    return value


def non_negative_int(field: str, value: object, *, below: int | None = None) -> int:
    """An `int` (never a `bool`) >= 0, and < `below` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{field} must be an int, got {type(value).__name__}")
    if value < 0 or (below is not None and value >= below):
        raise InvalidValue(f"{field} is out of range: {value}")
    return value


def limit_offset(limit: object, offset: object) -> tuple[int, int]:
    """Console paging: `limit` in 1..1000, `offset` >= 0."""
    checked_limit = non_negative_int("limit", limit)
    if not 1 <= checked_limit <= MAX_LIMIT:
        raise InvalidValue(f"limit must be between 1 and {MAX_LIMIT}: {checked_limit}")
    return checked_limit, non_negative_int("offset", offset)


def batch_size(value: object) -> int:
    """A prune batch size in 1..10000."""
    checked = non_negative_int("batch_size", value)
    if not 1 <= checked <= MAX_BATCH_SIZE:
        raise InvalidValue(f"batch_size must be between 1 and {MAX_BATCH_SIZE}: {checked}")
    return checked


def enum_member(enum: type[E], field: str, value: object) -> E:
    """A member of `enum` given as itself or as its exact value string."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in enum)
    raise InvalidValue(f"{field} must be one of {allowed}: {value!r}")


def aware_cutoff(field: str, value: object) -> datetime:
    """An aware datetime, converted to UTC and truncated to the millisecond."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(f"{field} must be a timezone-aware datetime")
    return truncate_ms(value)


def timeout(value: object) -> float | None:
    """A lock timeout: `None` (wait forever) or a finite number of seconds >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"timeout must be a number of seconds or None: {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidValue(f"timeout must be finite and >= 0: {value!r}")
    return float(value)


def positive_seconds(field: str, value: object, *, minimum: float = 0.0) -> float:
    """A finite number of seconds > `minimum` (deployment intervals and TTLs)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{field} must be a number of seconds: {value!r}")
    if not math.isfinite(value) or value <= minimum:
        raise InvalidValue(f"{field} must be finite and > {minimum}: {value!r}")
    return float(value)


def namespace(field: str, value: object) -> str:
    """A namespace name (schema, key prefix, table prefix): a plain ASCII identifier."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 48
        or not value.isascii()
        or not (value[0].isalpha() or value[0] == "_")
        or not all(ch.isalnum() or ch == "_" for ch in value)
    ):
        raise InvalidValue(
            f"{field} must be a plain identifier (letters, digits, underscore; at most 48): "
            f"{value!r}"
        )
    return value


def table_prefix(field: str, value: object, *, max_length: int = 48) -> str:
    """A table-name prefix: `""` or a plain ASCII identifier of at most `max_length` characters.

    Like `namespace`, but empty is allowed (no prefix), and a backend whose index names must fit
    the server's identifier limit passes a smaller `max_length`.
    """
    if value == "" and isinstance(value, str):
        return value
    checked = namespace(field, value)
    if len(checked) > max_length:
        raise InvalidValue(f"{field} is longer than {max_length} characters: {checked!r}")
    return checked
