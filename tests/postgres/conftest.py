"""Fixtures of the PostgreSQL backend's own tests (white-box: layout, plans, faults, locks).

The server comes from the plugin's `pikku_postgres_url` (skipped without one, an error when
`PIKKU_TEST_REQUIRE` names postgres). Storages on a reused, emptied schema come from the
plugin's `pikku_storage`/`pikku_storage_factory` (each module marks `pikku_backend("postgres")`);
`fresh_schema` is a never-migrated schema of this test, dropped afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow, tuple_row

from pikku_storage import Storage


@pytest.fixture
def storage(pikku_storage: Storage) -> Storage:
    """The plugin's storage on the test's backend (each module marks `postgres`)."""
    return pikku_storage


@pytest.fixture
def pg_url(pikku_postgres_url: str) -> str:
    return pikku_postgres_url


@pytest.fixture
async def admin(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    """A separate autocommit connection for looking at and interfering with the server."""
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True, row_factory=tuple_row)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def fresh_schema(pg_url: str) -> AsyncIterator[str]:
    """A schema name nobody has used yet; whatever exists under it is dropped afterwards."""
    name = f"pikku_pgt_{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
            )
