"""Numbered, append-only migrations of one namespace, applied under the dialect's lock.

Each `Migration` builds its DDL from the namespace's `Tables`, one statement per element. The
applied versions are rows of `<prefix>schema_version` (with the SHA-256 of the statements as
compiled for that database); a store at a newer version than `LATEST` raises `SchemaMismatch`.
Locks: PostgreSQL `pg_advisory_xact_lock`, MySQL `GET_LOCK`, SQLite the `BEGIN IMMEDIATE`
write transaction. MySQL DDL commits implicitly, so a migration interrupted there is resumed
by skipping what already exists (see docs/concepts.md#lifecycle-and-namespaces, style §9).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.schema import CreateIndex, CreateTable, ExecutableDDLElement

from pikku_storage.clock import to_epoch_ms
from pikku_storage.errors import SchemaMismatch
from pikku_storage.sqlalchemy._errors import is_already_exists
from pikku_storage.sqlalchemy._schema import Tables

if TYPE_CHECKING:
    from pikku_storage.sqlalchemy._connection import Database

__all__ = ["LATEST", "MIGRATIONS", "Migration", "checksum", "migrate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One schema version: the DDL that takes the namespace from `version - 1` to `version`.

    `statements` must keep producing the same DDL once shipped (a test pins its checksum per
    dialect); a later change is a new migration.
    """

    version: int
    statements: Callable[[Tables], Sequence[ExecutableDDLElement]]
    transactional: bool = True


def _create_v1(t: Tables) -> list[ExecutableDDLElement]:
    """Version 1: the version table and every table of docs/operations.md#storage-layout,
    docs/operations.md#storage-layout and docs/operations.md#storage-layout."""
    ordered = [
        t.schema_version,
        t.workflow_runs,
        t.workflow_steps,
        t.workflow_history,
        t.workflow_state,
        t.workflow_versions,
        t.ai_threads,
        t.ai_messages,
        t.ai_tool_calls,
        t.ai_thread_memory,
        t.ai_resource_memory,
        t.ai_runs,
        t.ai_pending_approvals,
        t.ai_approval_decisions,
        t.channels,
        t.channel_subscriptions,
        t.deployments,
        t.deployment_functions,
    ]
    statements: list[ExecutableDDLElement] = []
    for table in ordered:
        statements.append(CreateTable(table))
        statements.extend(CreateIndex(index) for index in sorted(table.indexes, key=_name))
    return statements


def _name(index: object) -> str:
    return str(getattr(index, "name", ""))


MIGRATIONS: Final[tuple[Migration, ...]] = (Migration(version=1, statements=_create_v1),)
LATEST: Final = MIGRATIONS[-1].version


def checksum(migration: Migration, tables: Tables, dialect: Dialect) -> str:
    """SHA-256 of the migration's statements as compiled for `dialect`."""
    mariadb = bool(getattr(dialect, "is_mariadb", False))
    key = (
        migration.version,
        tables.metadata.schema,
        tables.schema_version.name,
        dialect.name,
        mariadb,
    )
    found = _CHECKSUMS.get(key)
    if found is None:
        found = _CHECKSUMS[key] = _checksum(migration, tables, dialect)
    return found


_CHECKSUMS: dict[tuple[object, ...], str] = {}


def _checksum(migration: Migration, tables: Tables, dialect: Dialect) -> str:
    digest = hashlib.sha256()
    for statement in migration.statements(tables):
        digest.update(str(statement.compile(dialect=dialect)).strip().encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def current_version(conn: Connection, tables: Tables) -> int:
    """The highest applied version (0 when the version table does not exist)."""
    table = tables.schema_version
    if not inspect(conn).has_table(table.name, schema=table.schema):
        return 0
    found = conn.execute(select(func.max(table.c.version))).scalar_one_or_none()
    return int(found or 0)


def _check(db: Database, version: int) -> None:
    if version > LATEST:
        raise SchemaMismatch(db.schema or db.table_prefix or "(default)", version, LATEST)


def migrate(db: Database, conn: Connection, now: datetime) -> None:
    """Bring the namespace to `LATEST` on `conn` (no transaction open); idempotent and safe
    when several processes run it."""
    # Fast path without the lock: most inits find the store current.
    version = current_version(conn, db.tables)
    conn.rollback()
    _check(db, version)
    if version == LATEST:
        return
    digest = hashlib.sha256(f"migrate\x00{db.namespace}".encode()).digest()
    db.ops.begin(conn, write=True)
    with db.ops.migration_lock(conn, digest):
        if db.schema is not None:
            db.ops.create_schema(conn, db.schema)
        version = current_version(conn, db.tables)
        _check(db, version)
        for migration in MIGRATIONS:
            if migration.version > version:
                _apply(db, conn, migration, now)
        conn.commit()


def _apply(db: Database, conn: Connection, migration: Migration, now: datetime) -> None:
    tables = db.tables
    if db.ops.transactional_ddl:
        for statement in migration.statements(tables):
            conn.execute(statement)
    else:
        for statement in migration.statements(tables):
            try:
                conn.execute(statement)
            except Exception as error:
                if not is_already_exists(error):
                    raise
                logger.warning("migration %d resumed: %s exists", migration.version, statement)
    conn.execute(
        tables.schema_version.insert().values(
            version=migration.version,
            checksum=checksum(migration, tables, conn.dialect),
            applied_at=to_epoch_ms(now),
        )
    )
    logger.info(
        "applied schema migration %d to %s",
        migration.version,
        db.schema or db.table_prefix or "(default namespace)",
    )
