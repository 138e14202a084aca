"""`one_trip`: a multi-statement transaction in one round trip stays all or nothing.

The writes that touch several rows (a step transition, `update_run`, `save_messages`,
a registration) queue BEGIN, their statements and COMMIT under one Sync. A failing statement or
an exception in the block must leave nothing behind and hand the connection back idle, on an
autocommit connection (ours) and on a borrowed pool's transactional one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow, tuple_row

from pikku_storage.postgres._connection import one_trip

pytestmark = pytest.mark.pikku_backend("postgres")

Conn = psycopg.AsyncConnection[TupleRow]


@pytest.fixture(params=[True, False], ids=["autocommit", "transactional"])
async def conn(
    pg_url: str, fresh_schema: str, request: pytest.FixtureRequest
) -> AsyncIterator[Conn]:
    """A connection with a table `t (x int PRIMARY KEY)` in the test's schema on its path."""
    async with await psycopg.AsyncConnection.connect(
        pg_url, autocommit=request.param, row_factory=tuple_row
    ) as conn:
        schema = sql.Identifier(fresh_schema)
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        await conn.execute(sql.SQL("CREATE TABLE {}.t (x int PRIMARY KEY)").format(schema))
        await conn.execute(sql.SQL("SET search_path TO {}").format(schema))
        if not request.param:
            await conn.commit()
        yield conn


async def _rows(conn: Conn) -> list[int]:
    cur = await conn.execute("SELECT x FROM t ORDER BY x")
    rows = [int(row[0]) for row in await cur.fetchall()]
    if not conn.autocommit:
        await conn.rollback()
    return rows


async def test_one_trip_commits_every_statement_and_reads_results_after(conn: Conn) -> None:
    async with one_trip(conn):
        await conn.execute("INSERT INTO t VALUES (1)")
        cur = conn.cursor()
        await cur.execute("INSERT INTO t VALUES (2) RETURNING x")
    assert await cur.fetchone() == (2,)
    assert conn.info.transaction_status is TransactionStatus.IDLE
    assert await _rows(conn) == [1, 2]


async def _duplicate_key(conn: Conn) -> None:
    async with one_trip(conn):
        await conn.execute("INSERT INTO t VALUES (1)")
        await conn.execute("INSERT INTO t VALUES (1)")
        await conn.execute("INSERT INTO t VALUES (2)")


async def _raising_block(conn: Conn) -> None:
    async with one_trip(conn):
        await conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("after the first statement")


async def test_one_trip_writes_nothing_when_a_statement_fails(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        await _duplicate_key(conn)
    assert conn.info.transaction_status is TransactionStatus.IDLE
    assert await _rows(conn) == []


async def test_one_trip_writes_nothing_when_the_block_raises(conn: Conn) -> None:
    with pytest.raises(RuntimeError):
        await _raising_block(conn)
    assert conn.info.transaction_status is TransactionStatus.IDLE
    assert await _rows(conn) == []
