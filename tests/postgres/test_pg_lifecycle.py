"""Migrations, versions, pool ownership and options of the PostgreSQL backend (00 §5, 01 §6 60)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow, dict_row
from psycopg_pool import AsyncConnectionPool

from pikku_storage import ManualClock
from pikku_storage import open_storage as open_any_storage
from pikku_storage.errors import InvalidValue, SchemaMismatch, StorageUnavailable
from pikku_storage.postgres import (
    LATEST_VERSION,
    PgAIStorageService,
    PgChannelStore,
    PgDeploymentService,
    PgWorkflowRunService,
    PgWorkflowService,
    open_storage,
    storage_from_pool,
)
from pikku_storage.postgres._migrations import MIGRATIONS, Migration, migrate, migration_checksum
from pikku_storage.records import Channel, StepStatus

pytestmark = pytest.mark.pikku_backend("postgres")

Conn = psycopg.AsyncConnection[TupleRow]

# Shipped migrations are never edited: a change here means a new migration is needed instead.
PINNED: Final = {
    1: "b3a3e116d316b97294ec0f85ddd482c1c8bb0372943f2a9b5bf02e1bc1681d48",
    2: "c41f85f89b8fb4d0e4f17775382aa253873091d39e670cf39df29a21bee8b7e8",
    3: "3b779dbacdadf3debb6988528d9f69157e95b50951856c861b299dc070dfddae",
    4: "764bef31a56afc3c09d090834a9c4c13afa31938cd8fa4b0e8e37be1ea65e3ca",
}

# Argument: [url, schema]. Builds a Storage, prints "ready", waits for a line on stdin, then
# runs init() and one write, and prints "done".
_INIT: Final = """
import asyncio, json, sys
from pikku_storage import open_storage
from pikku_storage.clock import ManualClock

async def main():
    url, schema = json.loads(sys.argv[1])
    storage = open_storage(url, schema=schema, clock=ManualClock())
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    async with storage:
        await storage.workflows.create_run("wf", None)
    print("done", flush=True)

asyncio.run(main())
"""


def test_every_shipped_migration_keeps_its_pinned_sha256() -> None:
    """style §9: append-only, explicit consecutive versions, pinned contents."""
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert {m.version: migration_checksum(m) for m in MIGRATIONS} == PINNED
    assert max(PINNED) == LATEST_VERSION


async def _versions(admin: Conn, schema: str) -> list[TupleRow]:
    table = sql.Identifier(schema, "pikku_migrations")
    cur = await admin.execute(sql.SQL("SELECT version, checksum FROM {} ORDER BY 1").format(table))
    return await cur.fetchall()


async def test_four_processes_running_init_at_once_apply_each_migration_once(
    pg_url: str, fresh_schema: str, admin: Conn
) -> None:
    """00 §5: init() is safe when several processes call it at once."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _INIT,
            json.dumps([pg_url, fresh_schema]),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert await asyncio.wait_for(process.stdout.readline(), 60) == b"ready\n"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        results = await asyncio.wait_for(
            asyncio.gather(*(process.communicate() for process in processes)), 120
        )
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    for process, (stdout, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr.decode(errors="replace")
        assert stdout == b"done\n"
    assert await _versions(admin, fresh_schema) == list(PINNED.items())
    runs = sql.Identifier(fresh_schema, "workflow_runs")
    cur = await admin.execute(sql.SQL("SELECT count(*) FROM {}").format(runs))
    assert await cur.fetchone() == (4,)


async def test_a_store_at_a_newer_version_raises_schema_mismatch_from_init(
    pg_url: str, fresh_schema: str, admin: Conn
) -> None:
    """00 §5: a store written by a newer library is refused instead of used."""
    async with open_storage(pg_url, schema=fresh_schema) as storage:
        run_id = await storage.workflows.create_run("wf", 1)
    table = sql.Identifier(fresh_schema, "pikku_migrations")
    await admin.execute(
        sql.SQL("INSERT INTO {} VALUES (%(v)s, 'future')").format(table),
        {"v": LATEST_VERSION + 1},
    )
    newer = open_storage(pg_url, schema=fresh_schema)
    with pytest.raises(SchemaMismatch) as caught:
        await newer.init()
    await newer.close()
    assert (caught.value.found, caught.value.supported) == (LATEST_VERSION + 1, LATEST_VERSION)
    with pytest.raises(SchemaMismatch):
        async with PgWorkflowService(pg_url, schema=fresh_schema):
            pass
    cur = await admin.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(fresh_schema, "workflow_runs"))
    )
    assert await cur.fetchone() == (1,), run_id  # nothing was touched


async def test_a_non_transactional_migration_runs_in_autocommit_under_the_lock(
    pg_url: str, fresh_schema: str
) -> None:
    """style §9: steps that cannot run in a transaction are flagged and still applied once."""
    extra = Migration(
        version=LATEST_VERSION + 1,
        statements=(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS channels_name_idx"
            " ON {schema}.channels (channel_name)",
        ),
        transactional=False,
    )
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=False) as conn:
        assert await migrate(conn, fresh_schema, (*MIGRATIONS, extra)) == 0
        assert await migrate(conn, fresh_schema, (*MIGRATIONS, extra)) == extra.version
        assert not conn.autocommit
        with pytest.raises(SchemaMismatch):
            await migrate(conn, fresh_schema)


async def test_init_twice_and_concurrently_keeps_data(pg_url: str, fresh_schema: str) -> None:
    """01 §6 60: init() is idempotent, also from two instances at once."""
    first = open_storage(pg_url, schema=fresh_schema)
    second = open_storage(pg_url, schema=fresh_schema)
    try:
        await asyncio.gather(first.init(), second.init())
        run_id = await first.workflows.create_run("wf", {"kept": True})
        await first.init()
        await second.init()
        run = await second.workflows.get_run(run_id)
        assert run is not None
        assert run.input == {"kept": True}
    finally:
        await first.close()
        await second.close()


@asynccontextmanager
async def _borrowed_pool(pg_url: str) -> AsyncIterator[AsyncConnectionPool]:
    """A user's pool unlike ours: transactions not autocommit, dict rows, another time zone."""
    pool: AsyncConnectionPool = AsyncConnectionPool(
        pg_url,
        kwargs={"row_factory": dict_row, "options": "-c TimeZone=Asia/Kolkata"},
        min_size=1,
        max_size=4,
        open=False,
    )
    try:
        yield pool
    finally:
        await pool.close()


async def test_services_on_a_borrowed_pool_work_and_leave_it_open(
    pg_url: str, fresh_schema: str
) -> None:
    """00 §5 / 01 §6 60: a borrowed pool is opened if needed, used whatever its connection
    settings, and left open by close(); timestamps read back in UTC."""
    clock = ManualClock()
    async with _borrowed_pool(pg_url) as pool:
        workflows = PgWorkflowService(pool, schema=fresh_schema, clock=clock)
        runs = PgWorkflowRunService(pool, schema=fresh_schema, clock=clock)
        channels = PgChannelStore(pool, schema=fresh_schema, clock=clock)
        async with workflows, runs, channels:
            run_id = await workflows.create_run("wf", [1, 2])
            step = await workflows.insert_step_state(run_id, "s", None, None)
            assert (await workflows.claim_step(step.step_id)) is not None
            async with workflows.run_lock(run_id, timeout=1):
                await workflows.set_step_result(step.step_id, "ok")
            (history,) = await runs.get_run_history(run_id)
            assert history.status is StepStatus.SUCCEEDED
            assert history.created_at == clock.now()
            assert history.created_at.utcoffset() is not None
            assert not history.created_at.utcoffset()
            await channels.add_channel(Channel(channel_id="c", channel_name="n"))
            assert (await channels.get_channel_and_session("c")).channel_name == "n"
        assert not pool.closed
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT 1 AS one")
            assert await cur.fetchone() == {"one": 1}  # type: ignore[comparison-overlap]  # dict rows


async def test_storage_from_pool_shares_a_borrowed_pool_and_leaves_it_open(
    pg_url: str, fresh_schema: str
) -> None:
    """00 §5: the eight services on an application's pool borrow it; closing them keeps it."""
    async with _borrowed_pool(pg_url) as pool:
        async with storage_from_pool(pool, schema=fresh_schema, clock=ManualClock()) as storage:
            run_id = await storage.workflows.create_run("wf", None)
            assert (await storage.workflow_runs.get_run(run_id)) is not None
        assert not pool.closed
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT 1 AS one")
            assert await cur.fetchone() == {"one": 1}  # type: ignore[comparison-overlap]  # dict rows


async def test_a_service_built_from_a_dsn_owns_its_pool_and_closes_it(
    pg_url: str, fresh_schema: str
) -> None:
    """00 §5: a service built from a DSN owns its connection; close() is idempotent."""
    service = PgAIStorageService(pg_url, schema=fresh_schema)
    await service.init()
    await service.create_thread("r", thread_id="t")
    pool = service._db.pool  # white-box
    assert not pool.closed
    await service.close()
    await service.close()
    assert pool.closed


async def test_open_storage_shares_one_owned_pool_and_passes_connection_options(
    pg_url: str, fresh_schema: str, admin: Conn
) -> None:
    """One pool for the eight services, closed with the Storage; `prepare_threshold=None`
    (PgBouncer transaction mode) and libpq parameters reach the connections."""
    storage = open_any_storage(
        pg_url, schema=fresh_schema, prepare_threshold=None, application_name="pikku-opts"
    )
    pools = {service._db.pool for service in storage.services()}  # type: ignore[attr-defined]  # white-box
    assert len(pools) == 1
    async with storage:
        for _ in range(8):  # past psycopg's default prepare threshold
            await storage.workflows.get_run_state("3fa85f64-5717-4562-b3fc-2c963f66afa6")
        cur = await admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pikku-opts'"
        )
        row = await cur.fetchone()
        assert row is not None
        assert row[0] >= 1
    assert all(pool.closed for pool in pools)


def test_constructors_do_no_io_and_check_their_options() -> None:
    """00 §5: constructors store configuration only; bad options raise `InvalidValue`."""
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    PgWorkflowService(unreachable)
    PgDeploymentService(unreachable, heartbeat_interval=1, heartbeat_ttl=2)
    open_storage(unreachable, schema="other")
    for bad in ("", "1abc", "with-dash", "x" * 49, 'quo"te'):
        with pytest.raises(InvalidValue):
            PgWorkflowService(unreachable, schema=bad)
    for options in (
        {"bogus_option": 1},
        {"max_size": 0},
        {"min_size": 5, "max_size": 2},
        {"timeout": 0},
        {"prepare_threshold": "5"},
        {"check": "yes"},
    ):
        with pytest.raises(InvalidValue):
            open_storage(unreachable, **options)
    with pytest.raises(InvalidValue):
        PgChannelStore(object())  # type: ignore[arg-type]  # deliberately wrong


async def test_a_schema_name_is_quoted_so_case_makes_another_namespace(
    pg_url: str, fresh_schema: str, admin: Conn
) -> None:
    """00 §5: names are quoted identifiers, never spliced: `Pikku_X` and `pikku_x` differ."""
    upper = fresh_schema.replace("pikku", "Pikku")
    try:
        async with (
            open_storage(pg_url, schema=upper) as a,
            open_storage(pg_url, schema=fresh_schema) as b,
        ):
            await a.channels.add_channel(Channel(channel_id="c", channel_name="upper"))
            await b.channels.add_channel(Channel(channel_id="c", channel_name="lower"))
            assert (await a.channels.get_channel_and_session("c")).channel_name == "upper"
            assert (await b.channels.get_channel_and_session("c")).channel_name == "lower"
    finally:
        await admin.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(upper))
        )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dbname": "pikku_no_such_database"}, 'database "pikku_no_such_database" does not exist'),
        ({"user": "pikku_no_such_role"}, 'role "pikku_no_such_role" does not exist'),
    ],
)
async def test_init_reports_the_servers_reason_at_once(
    pg_url: str, change: dict[str, str], reason: str
) -> None:
    """Issue 13 item 7: a wrong database or user fails `init()` with the server's own reason,
    not after the pool's 30 s timeout with "couldn't get a connection"."""
    url = psycopg.conninfo.make_conninfo(pg_url, **change)
    storage = open_storage(url, clock=ManualClock(), timeout=30.0)
    with pytest.raises(StorageUnavailable, match=reason):  # a pool timeout names no reason
        await storage.init()
    await storage.close()
