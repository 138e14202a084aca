"""Classification of psycopg errors by SQLSTATE, and their translation into the contract errors.

Codes are read from `sqlstate`, never from message text (style §12). Connection failures of any
kind become `StorageUnavailable`; the call site decides what a unique or foreign-key violation
means (which record conflicts, which parent is missing). See docs/concepts.md#errors,
docs/operations.md#storage-layout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import psycopg

from pikku_storage.errors import StorageUnavailable

__all__ = [
    "PREPARED_HINT",
    "constraint_name",
    "is_connection_error",
    "is_foreign_key_violation",
    "is_lock_timeout",
    "is_out_of_range",
    "is_retryable",
    "is_unique_violation",
    "translate_errors",
]

UNIQUE_VIOLATION: Final = "23505"
FOREIGN_KEY_VIOLATION: Final = "23503"
LOCK_NOT_AVAILABLE: Final = "55P03"
NUMERIC_VALUE_OUT_OF_RANGE: Final = "22003"
# admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
_CONNECTION_STATES: Final = frozenset({"57P01", "57P02", "57P03", "53300"})
# duplicate_prepared_statement, invalid_sql_statement_name: psycopg's prepared statements met a
# server session shared by other clients (PgBouncer in transaction mode)
_PREPARED_STATES: Final = frozenset({"42P05", "26000"})
PREPARED_HINT: Final = (
    "a prepared statement clashed on a shared server session (PgBouncer in transaction mode?): "
    "open the storage with prepare_threshold=None"
)
# deadlock_detected, serialization_failure
_RETRYABLE_STATES: Final = frozenset({"40P01", "40001"})


def _state(exc: BaseException) -> str | None:
    return exc.sqlstate if isinstance(exc, psycopg.Error) else None


def is_unique_violation(exc: BaseException) -> bool:
    return _state(exc) == UNIQUE_VIOLATION


def is_foreign_key_violation(exc: BaseException) -> bool:
    return _state(exc) == FOREIGN_KEY_VIOLATION


def is_lock_timeout(exc: BaseException) -> bool:
    return _state(exc) == LOCK_NOT_AVAILABLE


def is_out_of_range(exc: BaseException) -> bool:
    """A number too large for its column (an `int` column given more than 2**31 - 1)."""
    return _state(exc) == NUMERIC_VALUE_OUT_OF_RANGE


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction may simply be run again."""
    return _state(exc) in _RETRYABLE_STATES


def is_connection_error(exc: BaseException) -> bool:
    """The server could not be reached or the session broke (class 08, 57P01-03, 53300).

    An `OperationalError` without SQLSTATE is a client-side connection failure (socket closed,
    pool timeout, pool closed): psycopg only attaches a code to errors the server sent.
    """
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _CONNECTION_STATES


def constraint_name(exc: BaseException) -> str | None:
    """The constraint a server error names in its diagnostics (a structured field)."""
    return exc.diag.constraint_name if isinstance(exc, psycopg.Error) else None


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    """Turn connection failures raised in the body into `StorageUnavailable`, and so the
    prepared-statement clashes of a transaction pooler, saying to set `prepare_threshold=None`."""
    try:
        yield
    except psycopg.Error as exc:
        if is_connection_error(exc):
            raise StorageUnavailable(f"PostgreSQL unavailable: {exc}") from exc
        if _state(exc) in _PREPARED_STATES:
            raise StorageUnavailable(f"{PREPARED_HINT} ({exc.sqlstate}: {exc})") from exc
        raise
