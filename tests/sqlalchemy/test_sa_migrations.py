"""Migrations, Alembic, lifecycle and names of the SQLAlchemy backend (00 §5, 01 §6 item 60,
style §9): numbered migrations under a lock, pinned checksums, `SchemaMismatch`, Alembic's
autogenerate comparison, borrowed engines."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from pikku_storage import open_storage as open_any_storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import InvalidValue, SchemaMismatch
from pikku_storage.sqlalchemy import (
    SqlAlchemyChannelStore,
    make_tables,
    open_storage,
    storage_from_engine,
)
from pikku_storage.sqlalchemy._migrations import LATEST, MIGRATIONS, checksum
from pikku_storage.sqlalchemy._schema import build_tables
from pikku_storage.sqlite import open_storage as open_sqlite
from tests.sqlalchemy.sa_helpers import Fresh, begin, connect, database

# SHA-256 of each shipped migration's DDL, compiled for the default namespace ("pikku_", no
# schema). A changed value means a shipped migration was edited: add a new one instead.
PINNED: dict[tuple[int, str], str] = {
    (1, "sqlite"): "a5ab580f7d7af7c37d6da2afd38e953c2ee6dbb667f26ea605c6d14b0cec6814",
    (1, "postgresql"): "d696354cf8808fd0c3aef53f3661f4ca3def2e25192d5124585748cea4cee7b4",
    (1, "mysql"): "64f7ef1949043a3e391d275c4f4b7b4952a60de554887f96d37ebbb57bac1054",
    (1, "mariadb"): "8b7ff0a2f0b95e6168d3c57a08ac556899d0b21aa8c99abf2ffbfde4ac3014c9",
    (2, "sqlite"): "85412422ac844d11e35b7cc7aca2cd489159d988022d55fa181047746062b164",
    (2, "postgresql"): "5174855af1c20fa217b26dcb7d512c8decb29e29f9abb2d80ed1c23ee266b3ff",
    (2, "mysql"): "51184fd8682d7fec57514ec107cd8d909856e075ee1726b3b0e9c34aa4c54844",
    (2, "mariadb"): "3cf2c72a7225754e8c06225c88a7dbec6f101cffbd31ac887526413afd5fb958",
}


async def test_concurrent_inits_of_two_instances_migrate_once_and_keep_data(fresh: Fresh) -> None:
    """01 §6 item 60: `init()` twice, and concurrently from two instances (own engines)."""
    first = open_storage(fresh.url, **fresh.options)
    second = open_storage(fresh.url, **fresh.options)
    try:
        await asyncio.gather(first.init(), second.init())
        run_id = await first.workflows.create_run("wf", {"a": 1})
        await first.init()
        await second.init()
        assert (await second.workflows.get_run(run_id)) is not None
        db = database(first)
        async with connect(db) as conn:
            versions = (await conn.execute(select(db.tables.schema_version.c.version))).all()
        assert [row.version for row in versions] == [m.version for m in MIGRATIONS]
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("driver", ["aiosqlite", "threads"])
async def test_many_instances_opening_a_new_sqlite_file_at_once_all_init(
    tmp_path: Path, driver: str
) -> None:
    """Switching a new file to WAL can fail at once with `SQLITE_BUSY`, without waiting for
    the busy timeout, when another connection switches it too: `init()` waits it out.
    (Before the fix about one try in eight failed; 20 tries of four instances each.)"""
    for attempt in range(20):
        path = tmp_path / f"new{attempt}.db"
        instances = [
            open_sqlite(path)
            if driver == "threads"
            else open_storage(f"sqlite+aiosqlite:///{path}")
            for _ in range(4)
        ]
        try:
            await asyncio.gather(*(instance.init() for instance in instances))
            run_id = await instances[0].workflows.create_run("wf", {})
            assert (await instances[-1].workflows.get_run(run_id)) is not None
        finally:
            for instance in instances:
                await instance.close()


async def test_a_store_newer_than_the_code_raises_schema_mismatch(fresh: Fresh) -> None:
    """00 §5: a store whose version is newer than the code raises from `init()`."""
    async with open_storage(fresh.url, **fresh.options) as storage:
        db = database(storage)
        async with begin(db) as conn:
            await conn.execute(
                db.tables.schema_version.insert().values(
                    version=LATEST + 1, checksum="0" * 64, applied_at=0
                )
            )
    newer = open_storage(fresh.url, **fresh.options)
    with pytest.raises(SchemaMismatch):
        await newer.init()
    await newer.close()


def _compare(sync_conn: Any, schema: str | None, prefix: str) -> list[Any]:
    def include_name(name: str | None, type_: str, parent: Any) -> bool:
        if type_ == "schema":
            return name == schema
        if type_ == "table":
            return bool(name and name.startswith(prefix))
        return True

    context = MigrationContext.configure(
        sync_conn,
        opts={
            "compare_type": True,
            "include_schemas": schema is not None,
            "include_name": include_name,
        },
    )
    return list(compare_metadata(context, make_tables(schema, prefix)))


async def test_alembic_autogenerate_finds_no_difference_after_init(fresh: Fresh) -> None:
    """The `MetaData` of `make_tables` is exactly what `init()` created (issue 5)."""
    async with open_storage(fresh.url, **fresh.options) as storage:
        db = database(storage)
        async with connect(db) as conn:
            diff = await conn.run_sync(_compare, db.schema, db.table_prefix)
    assert diff == []


def test_shipped_migrations_keep_their_checksums() -> None:
    """style §9: a shipped migration is never edited (its DDL hash is pinned per dialect)."""
    tables = build_tables(None, "pikku_")
    mariadb = mysql.dialect()
    mariadb.is_mariadb = True
    dialects = {
        "sqlite": sqlite.dialect(),
        "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]  # unannotated in SQLAlchemy
        "mysql": mysql.dialect(),
        "mariadb": mariadb,
    }
    found = {
        (migration.version, name): checksum(migration, tables, dialect)
        for migration in MIGRATIONS
        for name, dialect in dialects.items()
    }
    assert found == PINNED


async def test_a_borrowed_engine_stays_open_after_close(tmp_path: Path) -> None:
    """01 §6 item 60: `close()` leaves a borrowed engine open; `Storage` closes its own."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'borrowed.db'}")
    try:
        async with storage_from_engine(engine) as storage:
            assert await storage.eventhub.get_channel_ids_for_topic("topic") == []
        service = SqlAlchemyChannelStore(engine)
        await service.init()
        await service.close()
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "url",
    ["sqlite://:memory:", "sqlite:///{tmp}/a.db", "sqlite+aiosqlite:///{tmp}/b.db", "{tmp}/c.db"],
)
async def test_sqlite_urls_open_a_working_storage(url: str, tmp_path: Path) -> None:
    """00 §5: `sqlite:///path`, `sqlite://:memory:` and the SQLAlchemy form all work."""
    target = url.format(tmp=tmp_path)
    if target.startswith("/"):
        storage = open_sqlite(target, clock=ManualClock())
    else:
        storage = open_any_storage(target, clock=ManualClock())
    async with storage:
        run_id = await storage.workflows.create_run("wf", None)
        assert (await storage.workflows.get_run(run_id)) is not None
        db = database(storage)
        async with connect(db) as conn:
            count = await conn.execute(select(func.count()).select_from(db.tables.workflow_runs))
            assert count.scalar_one() == 1


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("postgresql://u@h/db", {}),  # no async driver named
        ("sqlite+aiosqlite://", {"schema": "s"}),  # SQLite has no schemas
        ("sqlite+aiosqlite://", {"table_prefix": "bad-prefix"}),
        ("sqlite+aiosqlite://", {"table_prefix": "x" * 33}),
        ("postgresql+psycopg://u@h/db", {"schema": 'a"; drop'}),
        ("mysql+pymysql://u@h/db", {}),  # a sync driver
    ],
)
def test_bad_urls_and_names_raise_invalid_value(url: str, options: dict[str, Any]) -> None:
    """00 §5: names are plain identifiers; a URL needs an async driver."""
    with pytest.raises(InvalidValue):
        open_storage(url, **options)
