"""What differs between PostgreSQL, MySQL/MariaDB and SQLite, as small methods of one object.

Services ask `ops_for(dialect)` once and call `insert_if_absent`, `upsert`, `for_update`,
`for_share`, `before`, the lock primitives and the migration lock; no service branches on the
dialect name (style §8). See docs/operations.md#storage-layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Insert,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from pikku_storage._ids import is_canonical_uuid
from pikku_storage.errors import InvalidValue, LockTimeout
from pikku_storage.sqlalchemy._errors import is_unique_violation

__all__ = ["DialectOps", "chunks", "ops_for"]

MIGRATION_LOCK_TIMEOUT: Final = 300  # seconds a MySQL init waits for another's migration
CHUNK: Final = 500  # bind parameters per IN list (docs/operations.md#storage-layout)

S = TypeVar("S")


def chunks(items: Sequence[S], size: int = CHUNK) -> Iterator[Sequence[S]]:
    """`items` in slices of at most `size` (long id lists stay within bind-parameter limits)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DialectOps:
    """The portable default (SQLite-flavoured where SQL is standard); subclasses override."""

    name: str = "sqlite"
    has_schemas: bool = False
    # Whether writers take row locks (PostgreSQL, InnoDB); else a write transaction holds
    # the whole database (SQLite `BEGIN IMMEDIATE`), so reads inside it cannot go stale.
    row_locks: bool = False
    # Whether a failed statement leaves the transaction usable (SQLite, InnoDB; PostgreSQL
    # aborts the whole transaction), so a unique key can be the check and the error's cause
    # be read afterwards.
    statement_rollback: bool = True
    transactional_ddl: bool = True
    cross_process_locks: bool = False

    def preparer_quote(self, dialect: Dialect, name: str) -> str:
        """`name` quoted by the dialect's IdentifierPreparer."""
        return dialect.identifier_preparer.quote_identifier(name)

    # --- transactions -----------------------------------------------------------------

    def begin(self, conn: Connection, *, write: bool) -> None:
        """Start the call's transaction on a fresh connection."""
        conn.begin()

    # --- statements -------------------------------------------------------------------

    def _insert(self, table: Table) -> Any:
        return sqlite.insert(table)

    def insert_if_absent(
        self, conn: Connection, table: Table, values: Mapping[str, object]
    ) -> bool:
        """Insert a row unless its primary/unique key exists; `True` iff this call inserted."""
        stmt = self._insert(table).values(dict(values)).on_conflict_do_nothing()
        result = conn.execute(stmt.execution_options(preserve_rowcount=True))
        return bool(result.rowcount == 1)

    def insert_or_ignore(self, table: Table, values: Mapping[str, object]) -> Insert:
        """An idempotent insert: an existing key is left alone (never `INSERT IGNORE`)."""
        stmt: Insert = self._insert(table).values(dict(values)).on_conflict_do_nothing()
        return stmt

    def upsert(
        self,
        table: Table,
        values: Mapping[str, object] | Sequence[Mapping[str, object]],
        keys: Sequence[str],
        update: Sequence[str],
    ) -> Insert:
        """Insert rows, or overwrite columns `update` of the row with the same `keys`."""
        stmt = self._insert(table).values(
            [dict(v) for v in values] if isinstance(values, Sequence) else dict(values)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={name: stmt.excluded[name] for name in update}
        )
        return stmt  # type: ignore[no-any-return]  # the dialect Insert is an Insert

    def for_update(self, select: Select[Any], *, skip_locked: bool = False) -> Select[Any]:
        """A locking read for a later write (a no-op where `BEGIN IMMEDIATE` serialises)."""
        return select

    def id_key(self, column: Any, bound: str) -> Any:
        """A UUID column as compared with a keyset cursor's id, which need not be a UUID."""
        return column

    def for_share(self, select: Select[Any]) -> Select[Any]:
        """A locking read that keeps the row from being deleted until commit."""
        return select

    def before(
        self,
        first: ColumnElement[Any],
        second: ColumnElement[Any],
        first_value: object,
        second_value: object,
    ) -> ColumnElement[bool]:
        """`(first, second) < (first_value, second_value)`, in the form the planner indexes."""
        return tuple_(first, second) < tuple_(literal(first_value, first.type), second_value)

    def lock_keys(
        self,
        conn: Connection,
        column: Column[Any],
        keys: Sequence[object],
        result: Column[Any] | None = None,
    ) -> list[Any]:
        """Lock the rows whose `column` is one of `keys` for this transaction; `result` (default
        `column`) of each."""
        found: list[Any] = []
        target = column if result is None else result
        for part in chunks(keys):
            query = self.for_update(select(target).where(column.in_(part)))
            found.extend((conn.execute(query)).scalars())
        return found

    def delete_keys(
        self,
        conn: Connection,
        column: Column[Any],
        keys: Sequence[object],
        *where: ColumnElement[bool],
    ) -> int:
        """Delete the rows whose `column` is one of `keys` (and `where` holds); the count."""
        table = column.table
        deleted = 0
        for part in chunks(keys):
            deleted += (conn.execute(table.delete().where(column.in_(part), *where))).rowcount
        return deleted

    def distinct_ascending(self, conn: Connection, column: Column[Any]) -> list[Any]:
        """The distinct values of an indexed column in index order, by a loose index scan: each
        step seeks the smallest value above the previous one, so the cost grows with the
        number of distinct values, not of rows (docs/services/workflow-runs.md,
        docs/services/agent-runs.md)."""
        names = select(func.min(column).label("value")).cte("distinct_values", recursive=True)
        following = select(func.min(column)).where(column > names.c.value).scalar_subquery()
        names = names.union_all(select(following).where(names.c.value.is_not(None)))
        rows = conn.execute(select(names.c.value).where(names.c.value.is_not(None)))
        return list(rows.scalars())

    # --- locks ------------------------------------------------------------------------

    def lock_key(self, digest: bytes) -> object:
        """The server-side lock id of a lock-name digest."""
        raise InvalidValue(f"{self.name} has no cross-process locks")

    async def try_lock(self, conn: AsyncConnection, key: object) -> bool:
        """Take the session lock `key` without waiting."""
        raise InvalidValue(f"{self.name} has no cross-process locks")

    async def unlock(self, conn: AsyncConnection, key: object) -> bool:
        """Release the session lock `key`; `False` if `conn` did not hold it (it was lost)."""
        raise InvalidValue(f"{self.name} has no cross-process locks")

    # --- migrations -------------------------------------------------------------------

    def create_schema(self, conn: Connection, schema: str) -> None:
        raise InvalidValue(f"{self.name} has no schemas; use table_prefix")

    @contextmanager
    def migration_lock(self, conn: Connection, digest: bytes) -> Iterator[None]:
        """Exclusive use of the namespace's migrations for the body (SQLite: the write
        transaction `begin(write=True)` opened)."""
        yield


class SqliteOps(DialectOps):
    """SQLite: every write begins `BEGIN IMMEDIATE`, so reads inside it are already locked."""

    def begin(self, conn: Connection, *, write: bool) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class PostgresOps(DialectOps):
    name = "postgresql"
    has_schemas = True
    cross_process_locks = True
    row_locks = True
    statement_rollback = False

    def _insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def id_key(self, column: Any, bound: str) -> Any:
        """`uuid` cannot be compared with a non-UUID text: compare as text then (the same order
        for canonical ids)."""
        return column if is_canonical_uuid(bound) else cast(column, Text)

    def for_update(self, select: Select[Any], *, skip_locked: bool = False) -> Select[Any]:
        return select.with_for_update(skip_locked=skip_locked)

    def for_share(self, select: Select[Any]) -> Select[Any]:
        return select.with_for_update(key_share=True, read=True)

    def lock_key(self, digest: bytes) -> object:
        return int.from_bytes(digest[:8], "big", signed=True)

    async def try_lock(self, conn: AsyncConnection, key: object) -> bool:
        result = await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        return bool(result.scalar_one())

    async def unlock(self, conn: AsyncConnection, key: object) -> bool:
        result = await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        return bool(result.scalar_one())

    def create_schema(self, conn: Connection, schema: str) -> None:
        quoted = self.preparer_quote(conn.dialect, schema)
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")

    @contextmanager
    def migration_lock(self, conn: Connection, digest: bytes) -> Iterator[None]:
        # Transaction-scoped: released by the commit or rollback that ends the migration.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.lock_key(digest)})
        yield


class MysqlOps(DialectOps):
    name = "mysql"
    has_schemas = True
    transactional_ddl = False
    cross_process_locks = True
    row_locks = True

    def _insert(self, table: Table) -> Any:
        return mysql.insert(table)

    def insert_if_absent(
        self, conn: Connection, table: Table, values: Mapping[str, object]
    ) -> bool:
        # No ON CONFLICT: insert and read a duplicate key (1062) as "present". A failed
        # statement does not end an InnoDB transaction.
        try:
            conn.execute(table.insert().values(dict(values)))
        except Exception as error:
            if is_unique_violation(error):
                return False
            raise
        return True

    def insert_or_ignore(self, table: Table, values: Mapping[str, object]) -> Insert:
        stmt = mysql.insert(table).values(dict(values))
        first = next(iter(values))
        return stmt.on_duplicate_key_update({first: table.c[first]})

    def upsert(
        self,
        table: Table,
        values: Mapping[str, object] | Sequence[Mapping[str, object]],
        keys: Sequence[str],
        update: Sequence[str],
    ) -> Insert:
        stmt = mysql.insert(table).values(
            [dict(v) for v in values] if isinstance(values, Sequence) else dict(values)
        )
        return stmt.on_duplicate_key_update({name: stmt.inserted[name] for name in update})

    def for_update(self, select: Select[Any], *, skip_locked: bool = False) -> Select[Any]:
        return select.with_for_update(skip_locked=skip_locked)

    def for_share(self, select: Select[Any]) -> Select[Any]:
        return select.with_for_update(read=True)

    def before(
        self,
        first: ColumnElement[Any],
        second: ColumnElement[Any],
        first_value: object,
        second_value: object,
    ) -> ColumnElement[bool]:
        # MySQL does not range-scan an index on a row-value comparison.
        return or_(first < first_value, and_(first == first_value, second < second_value))

    # InnoDB may scan a small table for `IN (…)` and lock every row it reads; a concurrent
    # `SKIP LOCKED` pick would then miss rows no one removes. One point lookup per key locks
    # exactly the rows named.

    def lock_keys(
        self,
        conn: Connection,
        column: Column[Any],
        keys: Sequence[object],
        result: Column[Any] | None = None,
    ) -> list[Any]:
        target = column if result is None else result
        query = select(target).where(column == bindparam("pikku_key")).with_for_update()
        found: list[Any] = []
        for key in dict.fromkeys(keys):
            found.extend((conn.execute(query, {"pikku_key": key})).scalars())
        return found

    def delete_keys(
        self,
        conn: Connection,
        column: Column[Any],
        keys: Sequence[object],
        *where: ColumnElement[bool],
    ) -> int:
        stmt = column.table.delete().where(column == bindparam("pikku_key"), *where)
        deleted = 0
        for key in dict.fromkeys(keys):
            deleted += (conn.execute(stmt, {"pikku_key": key})).rowcount
        return deleted

    def distinct_ascending(self, conn: Connection, column: Column[Any]) -> list[Any]:
        # MySQL 8 refuses a recursive CTE referenced from a subquery: one seek per value.
        values: list[Any] = []
        query = select(column).order_by(column).limit(1)
        while True:
            step = query if not values else query.where(column > values[-1])
            value = (conn.execute(step)).scalar_one_or_none()
            if value is None:
                return values
            values.append(value)

    def lock_key(self, digest: bytes) -> object:
        return "pikku:" + digest.hex()[:58]  # GET_LOCK names stop at 64 characters

    async def try_lock(self, conn: AsyncConnection, key: object) -> bool:
        result = await conn.execute(text("SELECT GET_LOCK(:key, 0)"), {"key": key})
        return bool(result.scalar_one() == 1)

    async def unlock(self, conn: AsyncConnection, key: object) -> bool:
        result = await conn.execute(text("SELECT RELEASE_LOCK(:key)"), {"key": key})
        return bool(result.scalar_one() == 1)

    def create_schema(self, conn: Connection, schema: str) -> None:
        quoted = self.preparer_quote(conn.dialect, schema)
        conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4")

    @contextmanager
    def migration_lock(self, conn: Connection, digest: bytes) -> Iterator[None]:
        key = self.lock_key(digest)
        result = conn.execute(
            text("SELECT GET_LOCK(:key, :timeout)"),
            {"key": key, "timeout": MIGRATION_LOCK_TIMEOUT},
        )
        if result.scalar_one() != 1:
            raise LockTimeout("schema migration", MIGRATION_LOCK_TIMEOUT)
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:key)"), {"key": key})


_OPS: Final[dict[str, DialectOps]] = {
    "sqlite": SqliteOps(),
    "postgresql": PostgresOps(),
    "mysql": MysqlOps(),
    "mariadb": MysqlOps(),
}


def ops_for(dialect: Dialect) -> DialectOps:
    """The operations of `dialect`. Raises: `InvalidValue` for an unsupported dialect."""
    try:
        return _OPS[dialect.name]
    except KeyError:
        raise InvalidValue(
            f"unsupported SQLAlchemy dialect {dialect.name!r}: use postgresql, mysql or sqlite"
        ) from None
