"""Namespace names decided once in the shared validation (00 §5; issue 17 items 2 and 8).

SQLite table names and MySQL index and constraint names ignore case, so a table prefix must be
lower case: `"xCase_"` is refused before any I/O and can never share tables with `"xcase_"`.
Schema names a server keeps for itself are refused on every backend that takes a schema.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pikku_storage import InvalidValue, ManualClock, open_storage
from pikku_storage.backends import driver_url
from pikku_storage.sqlalchemy import make_tables

CASE_VARIANTS = ("xCase_", "XCASE_", "Xcase_", "xcasE_")
RESERVED = (
    "pg_catalog",
    "pg_toast",
    "pg_temp_1",
    "pg_toast_temp_3",
    "pg_anything",
    "PG_Catalog",
    "information_schema",
    "Information_Schema",
    "mysql",
    "performance_schema",
    "sys",
)


@pytest.mark.parametrize("prefix", CASE_VARIANTS)
def test_a_table_prefix_with_upper_case_is_invalid_before_any_io(
    prefix: str, tmp_path: Path
) -> None:
    """The store is never touched: no file is created."""
    path = tmp_path / "never.db"
    with pytest.raises(InvalidValue, match="lower case"):
        open_storage(f"sqlite:///{path}", table_prefix=prefix)
    with pytest.raises(InvalidValue, match="lower case"):
        open_storage(f"sqlite+aiosqlite:///{path}", table_prefix=prefix)
    with pytest.raises(InvalidValue, match="lower case"):
        make_tables(table_prefix=prefix)
    assert not path.exists()


@pytest.mark.parametrize("schema", RESERVED)
def test_a_reserved_schema_name_is_invalid_on_every_backend_with_schemas(schema: str) -> None:
    """No I/O happens: the servers named need not exist."""
    for url in (
        "postgresql://nobody@127.0.0.1:1/none",
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "mysql+aiomysql://nobody@127.0.0.1:1/none",
    ):
        with pytest.raises(InvalidValue, match="reserved"):
            open_storage(url, schema=schema)
    with pytest.raises(InvalidValue, match="reserved"):
        make_tables(schema=schema)


def test_schema_names_that_merely_contain_a_reserved_word_are_fine() -> None:
    for schema in ("pikku_pg_catalog", "my_sys", "pgx", "mysql_app", "pg"):
        make_tables(schema=schema)


async def test_case_variant_prefixes_never_see_each_others_data_on_sqlite(
    tmp_path: Path,
) -> None:
    """The prefix `xcase_` keeps its run; `xCase_` is refused, so it can neither read nor prune
    it; the file holds only `xcase_` tables."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    async with open_storage(url, table_prefix="xcase_", clock=ManualClock()) as lower:
        run_id = await lower.workflows.create_run("wf", {"n": 1})
    for prefix in CASE_VARIANTS:
        with pytest.raises(InvalidValue):
            open_storage(url, table_prefix=prefix)
    async with open_storage(url, table_prefix="ycase_", clock=ManualClock()) as other:
        assert await other.workflow_runs.list_runs() == []
    async with open_storage(url, table_prefix="xcase_", clock=ManualClock()) as again:
        assert [run.id for run in await again.workflow_runs.list_runs()] == [run_id]
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}")
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            names = [row[0] for row in rows]
    finally:
        await engine.dispose()
    assert names
    assert all(name.startswith(("xcase_", "ycase_")) for name in names), names


@pytest_asyncio.fixture
async def mysql_prefix(pikku_mysql_url: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh lower-case table prefix on the MySQL server; its tables are dropped after."""
    url = driver_url(pikku_mysql_url)
    prefix = f"pkns{secrets.token_hex(3)}_"
    try:
        yield url, prefix
    finally:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
                for table in make_tables(table_prefix=prefix).sorted_tables:
                    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS `{table.name}`")
        finally:
            await engine.dispose()


async def test_case_variant_prefixes_never_see_each_others_data_on_mysql(
    mysql_prefix: tuple[str, str],
) -> None:
    """Before, a second `init()` with `xCase_` next to `xcase_` failed half-way with a raw error
    1005 (constraint names ignore case); now the variant is refused before any I/O and the
    lower-case namespace keeps its data."""
    url, prefix = mysql_prefix
    async with open_storage(url, table_prefix=prefix, clock=ManualClock()) as lower:
        run_id = await lower.workflows.create_run("wf", {"n": 1})
    for variant in (prefix.upper(), prefix[0].upper() + prefix[1:], prefix[:2] + "N" + prefix[3:]):
        with pytest.raises(InvalidValue, match="lower case"):
            open_storage(url, table_prefix=variant)
    async with open_storage(url, table_prefix=prefix, clock=ManualClock()) as again:
        assert [run.id for run in await again.workflow_runs.list_runs()] == [run_id]
        assert (
            await again.workflow_runs.prune_runs(
                finished_before=ManualClock().now(), statuses=["completed"]
            )
            == 0
        )
        assert [run.id for run in await again.workflow_runs.list_runs()] == [run_id]
