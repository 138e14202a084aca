"""Argument rules shared by every service; each raises `InvalidValue` before any I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Final, TypeVar

from pikku_storage.clock import EARLIEST, LATEST, truncate_ms
from pikku_storage.codec import check_text
from pikku_storage.errors import InvalidValue

__all__ = [
    "COUNT_CEILING",
    "INT32_END",
    "INT64_END",
    "MAX_ID_LENGTH",
    "MAX_LOCK_WAIT",
    "RESERVED_SCHEMAS",
    "aware_cutoff",
    "batch_size",
    "boolean",
    "count",
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
INT64_END: Final = 2**63
"""Counts and positions (`last_n`, `offset`, limits, tokens) are below this: signed 64-bit, what
every SQL driver binds and Redis parses."""
COUNT_CEILING: Final = 2**53
"""A count or position (`last_n`, `offset`, a prune `limit`) at or above this reaches past every
record a store can hold, so it is passed to the backend as this value (exact in a double, with
room to add a page to it in Redis and Lua)."""
INT32_END: Final = 2**31
"""Values stored in an `int` column (`retries`) are below this."""
MAX_LOCK_WAIT: Final = (2**31 - 1) / 1000
"""The longest finite lock timeout in seconds (~24.8 days): PostgreSQL's `lock_timeout` and
MySQL's `GET_LOCK` take 32-bit milliseconds or seconds. A longer timeout waits without a
deadline, as `None` does, on every backend."""
NAMESPACE_MAX: Final = 48
RESERVED_SCHEMAS: Final = frozenset({"information_schema", "mysql", "performance_schema", "sys"})
"""Schema names a server keeps for itself (plus every name starting with `pg_`)."""

E = TypeVar("E", bound=StrEnum)


def identifier(field: str, value: object) -> str:
    """A non-empty `str` of at most 255 characters, without U+0000 or lone surrogates."""
    if (
        type(value) is str
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isascii()
        and "\x00" not in value
    ):
        return value  # the common case: ASCII needs no encoding check
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


def non_negative_int(field: str, value: object, *, below: int = INT64_END) -> int:
    """An `int` (never a `bool`) in `0 <= value < below`; by default signed 64-bit, so no
    backend meets a number its driver cannot bind (see docs/concepts.md#values)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{field} must be an int, got {type(value).__name__}")
    if value < 0 or value >= below:
        shown = value if value.bit_length() < 128 else f"an int of {value.bit_length()} bits"
        raise InvalidValue(f"{field} is out of range 0..{below - 1}: {shown}")
    return value


def count(field: str, value: object) -> int:
    """A count or position: an `int` in `0 <= value < 2**63` (`InvalidValue` otherwise, on
    every backend), given to the backend capped at `COUNT_CEILING`, which means the same."""
    return min(non_negative_int(field, value), COUNT_CEILING)


def limit_offset(limit: object, offset: object) -> tuple[int, int]:
    """Console paging: `limit` in 1..1000, `offset` a count (see `count`)."""
    checked_limit = non_negative_int("limit", limit)
    if not 1 <= checked_limit <= MAX_LIMIT:
        raise InvalidValue(f"limit must be between 1 and {MAX_LIMIT}: {checked_limit}")
    return checked_limit, count("offset", offset)


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
    try:
        return truncate_ms(value)
    except OverflowError:  # before year 1 or after 9999 in UTC: nothing is older or newer
        return EARLIEST if value.year == 1 else LATEST


def timeout(value: object) -> float | None:
    """A lock timeout: `None` (wait forever) or a finite number of seconds >= 0.

    A timeout longer than `MAX_LOCK_WAIT` (~24.8 days) becomes `None`: no server can wait that
    long with a deadline, and the difference is not observable in practice.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"timeout must be a number of seconds or None: {value!r}")
    if isinstance(value, int) and value > MAX_LOCK_WAIT:
        return None  # before float(): an int too large for a float must not overflow
    if not math.isfinite(value) or value < 0:
        raise InvalidValue(f"timeout must be finite and >= 0: {value!r}")
    return None if value > MAX_LOCK_WAIT else float(value)


def positive_seconds(field: str, value: object, *, minimum: float = 0.0) -> float:
    """A finite number of seconds > `minimum` (deployment intervals and TTLs)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{field} must be a number of seconds: {value!r}")
    if not math.isfinite(value) or value <= minimum:
        raise InvalidValue(f"{field} must be finite and > {minimum}: {value!r}")
    return float(value)


def namespace(field: str, value: object) -> str:
    """A namespace name (schema, key prefix, table prefix): a plain ASCII identifier.

    Decided here for every backend: a `schema` is quoted, so case makes another schema, but a
    server's own names (`pg_…`, `information_schema`, MySQL's `mysql`, `performance_schema`,
    `sys`) are refused in any case; Redis key prefixes compare exactly; table prefixes are
    lower case (see `table_prefix`).
    """
    if (
        not isinstance(value, str)
        or not value
        or len(value) > NAMESPACE_MAX
        or not value.isascii()
        or not (value[0].isalpha() or value[0] == "_")
        or not all(ch.isalnum() or ch == "_" for ch in value)
    ):
        raise InvalidValue(
            f"{field} must be a plain identifier (letters, digits, underscore; at most "
            f"{NAMESPACE_MAX}): {value!r}"
        )
    folded = value.lower()
    if field == "schema" and (folded.startswith("pg_") or folded in RESERVED_SCHEMAS):
        raise InvalidValue(f"{field} {value!r} is reserved by the database server")
    return value


def table_prefix(field: str, value: object, *, max_length: int = NAMESPACE_MAX) -> str:
    """A table-name prefix: `""` or a lower-case plain ASCII identifier of at most
    `max_length` characters.

    Like `namespace`, but empty is allowed (no prefix), and a backend whose index names must fit
    the server's identifier limit passes a smaller `max_length`. Upper case is refused, not
    folded: SQLite table names and MySQL index and constraint names ignore case, so `"xCase_"`
    and `"xcase_"` would share tables (or collide half-created), and a silent fold would hide
    which tables a caller gets.
    """
    if value == "" and isinstance(value, str):
        return value
    checked = namespace(field, value)
    if checked != checked.lower():
        raise InvalidValue(
            f"{field} must be lower case ({checked.lower()!r}, not {checked!r}): SQL stores "
            "compare table names without case, so prefixes differing in case would share tables"
        )
    if len(checked) > max_length:
        raise InvalidValue(f"{field} is longer than {max_length} characters: {checked!r}")
    return checked
