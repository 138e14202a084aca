"""Column types whose storage differs by dialect: ids, identifiers, payloads and timestamps.

Each is a `TypeDecorator` choosing its dialect type in `load_dialect_impl`, so one `MetaData`
serves every dialect and services never branch on the dialect (see
docs/operations.md#storage-layout).
Their public home is `pikku_storage.sqlalchemy.types` (what Alembic migrations import), and each
`repr` is a call that rebuilds it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import CHAR, TypeDecorator, TypeEngine

from pikku_storage.clock import from_epoch_ms, to_epoch_ms

__all__ = [
    "EpochMs",
    "Ident",
    "LongText",
    "Timestamp",
    "UuidText",
    "binary_collation",
]

PUBLIC_MODULE: Final = "pikku_storage.sqlalchemy.types"
MAX_IDENT: Final = 255
MYSQL_COLLATION: Final = "utf8mb4_0900_bin"
MARIADB_COLLATION: Final = "utf8mb4_nopad_bin"


def binary_collation(dialect: Dialect) -> str | None:
    """The binary, NO PAD collation of identifier columns, or `None` where the default is one.

    PostgreSQL `"C"` (byte order is code-point order for UTF-8), MySQL 8 `utf8mb4_0900_bin`,
    MariaDB `utf8mb4_nopad_bin`; never a PAD SPACE collation, where `"a"` equals `"a "`.
    SQLite's default `BINARY` already compares bytes. See docs/operations.md#storage-layout.
    """
    if dialect.name == "postgresql":
        return "C"
    if dialect.name in ("mysql", "mariadb"):
        return MARIADB_COLLATION if getattr(dialect, "is_mariadb", False) else MYSQL_COLLATION
    return None


class Ident(TypeDecorator[str]):
    """An identifier: `String(length)` with the dialect's binary collation."""

    impl = String
    cache_ok = True

    def __init__(self, length: int = MAX_IDENT) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[str]:
        collation = binary_collation(dialect)
        if collation is None:
            return String(self.length)
        if dialect.name == "postgresql":
            return String(self.length, collation=collation)
        return mysql.VARCHAR(self.length, charset="utf8mb4", collation=collation)

    def __repr__(self) -> str:
        return "Ident()" if self.length == MAX_IDENT else f"Ident({self.length})"


class UuidText(TypeDecorator[str]):
    """A UUID kept as its canonical string: native `uuid` on PostgreSQL, `CHAR(36)` elsewhere.

    Callers pass canonical UUID strings only (D2 is decided before any I/O). See
    docs/operations.md#storage-layout.
    """

    impl = CHAR
    cache_ok = True

    def __init__(self, length: int = 36) -> None:
        if length != 36:  # `length` only because older migrations render it
            raise ValueError(f"UuidText is 36 characters long, not {length}")
        super().__init__(36)

    def __repr__(self) -> str:
        return "UuidText()"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[str]:
        if dialect.name == "postgresql":
            return postgresql.UUID(as_uuid=False)
        if dialect.name in ("mysql", "mariadb"):
            return mysql.CHAR(36, charset="ascii", collation="ascii_bin")
        return CHAR(36)


class LongText(TypeDecorator[str]):
    """Codec JSON or free text: `Text`, `LONGTEXT` on MySQL (`TEXT` stops at 64 KiB)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[str]:
        if dialect.name in ("mysql", "mariadb"):
            return mysql.LONGTEXT()
        return Text()


_READ_BACK: dict[int, datetime] = {}  # recent stamps (immutable), shared by rows of one write
_READ_BACK_MAX: Final = 4096


def _from_epoch(value: int | None) -> datetime | None:
    """A stored epoch-milliseconds integer read back (result processors). Rows written by one
    call share their stamps (`created_at == updated_at`, a message batch), so recent values
    are kept: a `datetime` is immutable, sharing one aliases nothing."""
    if value is None:
        return None
    found = _READ_BACK.get(value)
    if found is None:
        if len(_READ_BACK) >= _READ_BACK_MAX:
            _READ_BACK.clear()
        found = _READ_BACK[value] = from_epoch_ms(value)
    return found


class EpochMs(TypeDecorator[datetime]):
    """An aware UTC datetime stored as `BIGINT` epoch milliseconds on every dialect.

    Exact everywhere and compared as integers in indexes (see docs/operations.md#storage-layout).
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        return None if value is None else to_epoch_ms(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_epoch_ms(int(value))

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name == "sqlite":  # always an int: one call per value, not the wrapper's
            return _from_epoch
        return super().result_processor(dialect, coltype)


class Timestamp(TypeDecorator[datetime]):
    """The workflow tables' timestamp: PostgreSQL `timestamptz`, MySQL `DATETIME(3)` in UTC,
    SQLite integer epoch milliseconds; always read back as an aware UTC datetime.

    Values are already whole milliseconds (the service clock truncates). See
    docs/operations.md#storage-layout.
    """

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return postgresql.TIMESTAMP(timezone=True)
        if dialect.name in ("mysql", "mariadb"):
            return mysql.DATETIME(fsp=3)
        return BigInteger()

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> object:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value.astimezone(UTC)
        if dialect.name in ("mysql", "mariadb"):
            return value.astimezone(UTC).replace(tzinfo=None)
        return to_epoch_ms(value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name == "sqlite":  # an int column with no driver processing of its own
            return _from_epoch
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: object, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.replace(tzinfo=UTC)
            return value.astimezone(UTC)
        assert isinstance(value, int)
        return from_epoch_ms(value)


for _type in (Ident, UuidText, LongText, EpochMs, Timestamp):
    _type.__module__ = PUBLIC_MODULE  # tracebacks and Alembic name the public module
