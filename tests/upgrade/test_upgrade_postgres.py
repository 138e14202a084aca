"""A PostgreSQL schema written at version 3 (the library of commit 6c7f177) opens at version 4.

The fixture `fixtures/postgres/version3.sql` is a `pg_dump` of a schema filled through the old
library by `make_postgres_fixture.py`; it is loaded under a fresh schema, then `init()`
migrates it. Spec: 05 D14, §4, §5 item 36.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from pikku_storage import (
    ManualClock,
    SchemaMismatch,
)
from pikku_storage.postgres import LATEST_VERSION, open_storage
from pikku_storage.postgres._migrations import MIGRATIONS, migrate
from tests.upgrade._old import check_scenario_migrated, old_library, open_with_old_library

FIXTURE: Final = Path(__file__).parent / "fixtures" / "postgres" / "version3.sql"
PLACEHOLDER: Final = "__SCHEMA__"

Conn = psycopg.AsyncConnection[TupleRow]

# The markers of migration 4 beside the values recomputed from the steps (05 §4).
_MARKERS: Final = sql.SQL(
    "SELECT r.workflow, r.status, r.active_steps, r.activity_at"
    " = greatest(r.updated_at, (SELECT max(s.updated_at) FROM {steps} AS s"
    " WHERE s.workflow_run_id = r.workflow_run_id)),"
    " ARRAY(SELECT s.step_name || ':' || (s.dispatch_since IS NOT DISTINCT FROM s.updated_at)"
    " || ':' || (s.dispatch_since IS NULL) FROM {steps} AS s"
    " WHERE s.workflow_run_id = r.workflow_run_id)"
    " FROM {runs} AS r ORDER BY r.seq"
)


@pytest.fixture
async def admin(pikku_postgres_url: str) -> AsyncIterator[Conn]:
    conn = await psycopg.AsyncConnection.connect(pikku_postgres_url, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def old_schema(pikku_postgres_url: str) -> AsyncIterator[str]:
    """A fresh schema holding the fixture (version 3), dropped afterwards."""
    schema = f"pikku_upg_{secrets.token_hex(4)}"
    assert re.fullmatch(r"[a-z0-9_]+", schema)  # spliced unquoted, as pg_dump wrote it
    script = FIXTURE.read_text("utf-8").replace(PLACEHOLDER, schema)
    async with await psycopg.AsyncConnection.connect(pikku_postgres_url, autocommit=True) as conn:
        await conn.execute(script.encode())  # one simple-protocol script: the dump as written
    try:
        yield schema
    finally:
        async with await psycopg.AsyncConnection.connect(
            pikku_postgres_url, autocommit=True
        ) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


async def _versions(admin: Conn, schema: str) -> list[int]:
    table = sql.Identifier(schema, "pikku_migrations")
    cur = await admin.execute(sql.SQL("SELECT version FROM {} ORDER BY 1").format(table))
    return [int(row[0]) for row in await cur.fetchall()]


async def test_a_version_3_schema_migrates_on_init_with_backfilled_markers(
    pikku_postgres_url: str, old_schema: str, admin: Conn
) -> None:
    """05 §5 item 36 [SQL] on PostgreSQL: old records read 05 §1's defaults, the migration
    backfills 05 §4's markers (D14), the sweepers find the old running runs and pending steps,
    `owners` finds the old threads."""
    assert await _versions(admin, old_schema) == [1, 2, 3]
    clock = ManualClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with open_storage(pikku_postgres_url, schema=old_schema, clock=clock) as storage:
        assert await _versions(admin, old_schema) == list(range(1, LATEST_VERSION + 1))
        query = _MARKERS.format(
            steps=sql.Identifier(old_schema, "workflow_step"),
            runs=sql.Identifier(old_schema, "workflow_runs"),
        )
        cur = await admin.execute(query)
        # per run: workflow, status, active_steps, activity_at recomputed, and per step
        # "name:dispatch_since = updated_at:dispatch_since IS NULL"
        assert await cur.fetchall() == [
            ("flow", "running", 0, True, ["queued:true:false"]),
            ("flow", "running", 0, True, ["done:false:true"]),
            ("other", "completed", 0, True, ["left:false:true"]),
        ]
        await check_scenario_migrated(storage)
    async with open_storage(pikku_postgres_url, schema=old_schema, clock=clock) as storage:
        assert len(await storage.workflow_runs.list_runs()) == 3  # a second init: nothing to do
    assert await _versions(admin, old_schema) == list(range(1, LATEST_VERSION + 1))


async def test_the_version_3_migrator_refuses_the_migrated_schema(
    pikku_postgres_url: str, old_schema: str, admin: Conn
) -> None:
    """00 §5: a library that knows only versions 1 to 3 (its `migrate()` with the shipped
    migrations up to 3, pinned unchanged) raises `SchemaMismatch` on the migrated schema."""
    async with open_storage(pikku_postgres_url, schema=old_schema, clock=ManualClock()):
        pass
    with pytest.raises(SchemaMismatch):
        await migrate(admin, old_schema, MIGRATIONS[:3])


async def test_the_old_library_raises_schema_mismatch_on_the_migrated_schema(
    pikku_postgres_url: str, old_schema: str, tmp_path: Path
) -> None:
    """05 §5 item 36 / 00 §5: the library of 6c7f177 itself, in another process, opening the
    migrated schema gets `SchemaMismatch` from `init()`."""
    async with open_storage(pikku_postgres_url, schema=old_schema, clock=ManualClock()):
        pass
    opener = f"open_storage({pikku_postgres_url!r}, schema={old_schema!r})"
    verdict = await asyncio.to_thread(
        open_with_old_library, old_library(tmp_path), "pikku_storage.postgres", opener, version=3
    )
    assert verdict.startswith("SchemaMismatch"), verdict
