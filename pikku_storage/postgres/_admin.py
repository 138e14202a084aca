"""Whole namespaces (schemas) on a PostgreSQL server: create and migrate, drop, sweep.

The backend registry (`pikku_storage.backends`) calls these for `pikku-storage check`, the
bench and the pytest providers; applications use `init()` instead. Each call opens one
autocommit connection and closes it again.
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from pikku_storage import _validate as v
from pikku_storage.postgres._connection import DEFAULT_SCHEMA
from pikku_storage.postgres._errors import translate_errors
from pikku_storage.postgres._migrations import migrate

__all__ = ["connect", "create_namespace", "drop_matching", "drop_namespace"]

_DROP: Final = sql.SQL("DROP SCHEMA IF EXISTS {schema} CASCADE")
_DROP_LOCK_TIMEOUT: Final = sql.SQL("SET lock_timeout = '10s'")
_MATCHING: Final = sql.SQL(
    "SELECT nspname FROM pg_catalog.pg_namespace WHERE strpos(nspname, %(marker)s) > 0 ORDER BY 1"
)


async def connect(url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """A new autocommit connection with tuple rows (the caller closes it)."""
    return await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=tuple_row)


async def create_namespace(url: str, *, schema: str = DEFAULT_SCHEMA) -> None:
    """Create or migrate `schema` to this code's version (what `init()` does)."""
    v.namespace("schema", schema)
    async with translate_errors(), await connect(url) as conn:
        await migrate(conn, schema)


async def drop_namespace(url: str, *, schema: str = DEFAULT_SCHEMA) -> None:
    """Drop `schema` and everything in it (waiting at most 10 s for its locks)."""
    v.namespace("schema", schema)
    async with translate_errors(), await connect(url) as conn:
        await conn.execute(_DROP_LOCK_TIMEOUT)
        await conn.execute(_DROP.format(schema=sql.Identifier(schema)))


async def drop_matching(url: str, marker: str) -> list[str]:
    """Drop every schema whose name contains `marker`; their names."""
    async with translate_errors(), await connect(url) as conn:
        cur = await conn.execute(_MATCHING, {"marker": marker})
        names = [str(row[0]) for row in await cur.fetchall()]
        await conn.execute(_DROP_LOCK_TIMEOUT)
        for name in names:
            await conn.execute(_DROP.format(schema=sql.Identifier(name)))
    return names
