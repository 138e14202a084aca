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
from typing import TYPE_CHECKING, Any, Final, cast

from sqlalchemy import Column, Table, and_, func, inspect, literal_column, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import (
    AddConstraint,
    CheckConstraint,
    CreateIndex,
    CreateTable,
    DropConstraint,
    ExecutableDDLElement,
)
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.sql.expression import ClauseElement

from pikku_storage.clock import to_epoch_ms
from pikku_storage.errors import SchemaMismatch
from pikku_storage.sqlalchemy._errors import is_already_exists
from pikku_storage.sqlalchemy._schema import Tables, build_tables

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
    statements: Callable[[Tables, Dialect], Sequence[Executable]]
    transactional: bool = True


def _create_v1(latest: Tables, dialect: Dialect) -> list[Executable]:
    """Version 1: the version table and every table of docs/operations.md#storage-layout,
    docs/operations.md#storage-layout and docs/operations.md#storage-layout."""
    t = build_tables(latest.metadata.schema, latest.prefix, 1)
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
    statements: list[Executable] = []
    for table in ordered:
        statements.append(CreateTable(table))
        statements.extend(CreateIndex(index) for index in sorted(table.indexes, key=_name))
    return statements


def _name(index: object) -> str:
    return str(getattr(index, "name", ""))


class AddColumn(ExecutableDDLElement):
    """`ALTER TABLE … ADD COLUMN` of one column of its table, as the dialect specifies it.

    `default` is a DEFAULT used only to fill existing rows (dropped afterwards where the
    dialect can); `check` a column CHECK, for SQLite, which cannot add a table constraint.
    """

    inherit_cache = False

    def __init__(
        self, column: Column[Any], *, default: str | None = None, check: str | None = None
    ) -> None:
        self.column = column
        self.default = default
        self.check = check


@compiles(AddColumn)
def _compile_add_column(element: AddColumn, compiler: DDLCompiler, **kw: Any) -> str:
    column = element.column
    spec = compiler.get_column_specification(column)
    if element.default is not None:
        spec += f" DEFAULT {element.default}"
    if element.check is not None:
        spec += f" CHECK ({element.check})"
    table = compiler.preparer.format_table(column.table)
    return f"ALTER TABLE {table} ADD COLUMN {spec}"


class WidenColumn(ExecutableDDLElement):
    """A column's type changed to its table's (PostgreSQL `ALTER COLUMN … TYPE`, MySQL
    `MODIFY COLUMN` with the whole column specification)."""

    inherit_cache = False

    def __init__(self, column: Column[Any]) -> None:
        self.column = column


@compiles(WidenColumn)
def _compile_widen(element: WidenColumn, compiler: DDLCompiler, **kw: Any) -> str:
    column = element.column
    table = compiler.preparer.format_table(column.table)
    if compiler.dialect.name == "postgresql":
        kind = compiler.type_compiler.process(column.type)
        name = compiler.preparer.format_column(column)
        return f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {kind}"
    return f"ALTER TABLE {table} MODIFY COLUMN {compiler.get_column_specification(column)}"


class DropDefault(ExecutableDDLElement):
    """`ALTER TABLE … ALTER COLUMN … DROP DEFAULT` (PostgreSQL, MySQL, MariaDB)."""

    inherit_cache = False

    def __init__(self, column: Column[Any]) -> None:
        self.column = column


@compiles(DropDefault)
def _compile_drop_default(element: DropDefault, compiler: DDLCompiler, **kw: Any) -> str:
    table = compiler.preparer.format_table(element.column.table)
    name = compiler.preparer.format_column(element.column)
    return f"ALTER TABLE {table} ALTER COLUMN {name} DROP DEFAULT"


class SqlText(ExecutableDDLElement):
    """A DDL statement whose table names are formatted by the dialect (SQLite's rebuild)."""

    inherit_cache = False

    def __init__(self, template: str, **tables: Table) -> None:
        self.template = template
        self.tables = tables


@compiles(SqlText)
def _compile_sql_text(element: SqlText, compiler: DDLCompiler, **kw: Any) -> str:
    names = {key: compiler.preparer.format_table(t) for key, t in element.tables.items()}
    return element.template.format(**names)


class CreateTableNamed(ExecutableDDLElement):
    """`CREATE TABLE` of `table`'s definition (no indexes) under another, quoted name."""

    inherit_cache = False

    def __init__(self, table: Table, name: str) -> None:
        self.table = table
        self.name = name


@compiles(CreateTableNamed)
def _compile_create_named(element: CreateTableNamed, compiler: DDLCompiler, **kw: Any) -> str:
    sql = str(compiler.process(CreateTable(element.table), **kw))
    head = f"CREATE TABLE {compiler.preparer.format_table(element.table)} ("
    assert sql.lstrip().startswith(head), sql[:80]
    return sql.lstrip().replace(head, f"CREATE TABLE {element.name} (", 1)


_ACTIVE: Final = ("running", "scheduled", "suspended")


def _constraint(table: Table, name: str) -> CheckConstraint:
    for constraint in table.constraints:
        if isinstance(constraint, CheckConstraint) and constraint.name == name:
            return constraint
    raise LookupError(name)  # pragma: no cover - a layout bug


def _upgrade_v2(t: Tables, dialect: Dialect) -> list[Executable]:
    """Version 2 (docs/operations.md#storage-layout): scores, message and tool-call flags, run,
    step, attempt and version columns, the sweeper markers and their indexes, the agent run
    CHECKs widened to the new enum members; old rows read the defaults, markers backfilled."""
    sqlite = dialect.name == "sqlite"
    runs, steps, hist, versions = (
        t.workflow_runs,
        t.workflow_steps,
        t.workflow_history,
        t.workflow_versions,
    )
    epoch = {"sqlite": "0", "postgresql": "CURRENT_TIMESTAMP"}.get(
        dialect.name, "CURRENT_TIMESTAMP(3)"
    )
    version_check = str(_constraint(versions, f"{t.prefix}wf_versions_status_check").sqltext)
    out: list[Executable] = [
        AddColumn(runs.c.deterministic),
        AddColumn(runs.c.planned_steps),
        AddColumn(runs.c.active_steps),
        AddColumn(runs.c.activity_at, default=epoch),
        AddColumn(steps.c.from_step_name),
        AddColumn(steps.c.child_run_id),
        AddColumn(steps.c.dispatch_since),
        AddColumn(hist.c.child_run_id),
        AddColumn(versions.c.status, check=version_check if sqlite else None),
        AddColumn(t.ai_messages.c.reasoning_content),
        AddColumn(t.ai_messages.c.interrupted),
        AddColumn(t.ai_tool_calls.c.result_undelivered),
    ]
    if not sqlite:  # SQLite does not enforce VARCHAR lengths
        out.append(WidenColumn(t.ai_pending_approvals.c.kind))
        out.append(WidenColumn(t.ai_approval_decisions.c.kind))
        out.append(DropDefault(runs.c.activity_at))
        out.append(AddConstraint(_constraint(versions, f"{t.prefix}wf_versions_status_check")))
    out.extend(_widen_run_checks(t, dialect))
    out.append(CreateTable(t.ai_run_scores))
    out.extend(CreateIndex(index) for index in sorted(t.ai_run_scores.indexes, key=_name))
    # D14: markers of the rows already stored.
    active = (
        select(func.count())
        .where(steps.c.workflow_run_id == runs.c.workflow_run_id)
        .where(steps.c.status.in_(_ACTIVE))
        .scalar_subquery()
    )
    latest = (
        select(func.max(steps.c.updated_at))
        .where(steps.c.workflow_run_id == runs.c.workflow_run_id)
        .where(steps.c.updated_at > runs.c.updated_at)
        .scalar_subquery()
    )
    out.append(
        runs.update().values(
            active_steps=active, activity_at=func.coalesce(latest, runs.c.updated_at)
        )
    )
    running = select(runs.c.workflow_run_id).where(runs.c.status == literal_column("'running'"))
    out.append(
        steps.update()
        .where(
            and_(
                steps.c.status == literal_column("'pending'"), steps.c.workflow_run_id.in_(running)
            )
        )
        .values(dispatch_since=steps.c.updated_at)
    )
    out.append(CreateIndex(_index(runs, f"{t.prefix}wf_runs_stalled_idx")))
    out.append(CreateIndex(_index(steps, f"{t.prefix}wf_step_dispatch_idx")))
    return out


def _index(table: Table, name: str) -> Any:
    return next(index for index in table.indexes if index.name == name)


def _widen_run_checks(t: Tables, dialect: Dialect) -> list[Executable]:
    """Replace `ai_runs`' status and suspend-reason CHECKs by the ones naming every member.

    PostgreSQL and MySQL drop and add the constraints. SQLite cannot, so it rebuilds the table:
    the rows of the tables referencing it (approvals, decisions) are kept aside in temporary
    tables while dropping the old table deletes them by cascade, then put back.
    """
    old = build_tables(t.metadata.schema, t.prefix, 1).ai_runs
    names = (f"{t.prefix}ai_runs_status_check", f"{t.prefix}ai_runs_reason_check")
    if dialect.name != "sqlite":
        out: list[Executable] = [DropConstraint(_constraint(old, n)) for n in names]
        out.extend(AddConstraint(_constraint(t.ai_runs, n)) for n in names)
        return out
    runs = t.ai_runs
    new = f'"{t.prefix}ai_runs_v2"'
    columns = ", ".join(f'"{c.name}"' for c in runs.columns)
    kept = {
        "pending": (t.ai_pending_approvals, f"{t.prefix}m2_pending"),
        "decisions": (t.ai_approval_decisions, f"{t.prefix}m2_decisions"),
    }
    out = [
        CreateTableNamed(runs, new),
        SqlText(f"INSERT INTO {new} ({columns}) SELECT {columns} FROM {{old}}", old=runs),
    ]
    for _key, (table, temp) in kept.items():
        out.append(SqlText(f'CREATE TEMP TABLE "{temp}" AS SELECT * FROM {{table}}', table=table))
    out.append(SqlText("DROP TABLE {old}", old=runs))
    out.append(SqlText(f'ALTER TABLE {new} RENAME TO "{runs.name}"'))
    out.extend(CreateIndex(index) for index in sorted(runs.indexes, key=_name))
    for _key, (table, temp) in kept.items():
        out.append(SqlText(f'INSERT INTO {{table}} SELECT * FROM temp."{temp}"', table=table))
        out.append(SqlText(f'DROP TABLE temp."{temp}"'))
    return out


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(version=1, statements=_create_v1),
    Migration(version=2, statements=_upgrade_v2),
)
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
    for statement in migration.statements(tables, dialect):
        compiled = cast(ClauseElement, statement).compile(dialect=dialect)  # every element is one
        digest.update(str(compiled).strip().encode())
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
        for statement in migration.statements(tables, conn.dialect):
            conn.execute(statement)
    else:
        for statement in migration.statements(tables, conn.dialect):
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
