"""Whole namespaces on an SQLAlchemy database: create and migrate, drop, sweep.

A namespace is a schema on PostgreSQL and a table prefix elsewhere. The backend registry
(`pikku_storage.backends`) calls these for `pikku-storage check`, the bench and the pytest
providers; applications use `init()` instead.
"""

from __future__ import annotations

from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from pikku_storage.clock import SystemClock
from pikku_storage.errors import InvalidValue
from pikku_storage.sqlalchemy._connection import Database, create_engine
from pikku_storage.sqlalchemy._errors import translate_errors
from pikku_storage.sqlalchemy._schema import build_tables

__all__ = ["create_namespace", "drop_matching", "drop_namespace", "drop_tables"]


def _engine(url: str) -> AsyncEngine:
    engine = create_engine(url, engine_options={"poolclass": NullPool})
    if not isinstance(engine, AsyncEngine):  # the SQLite preset's threaded driver
        engine.dispose()
        raise InvalidValue(f"namespace administration needs an async driver URL: {url}")
    return engine


async def create_namespace(
    url: str | AsyncEngine, *, schema: str | None = None, table_prefix: str = "pikku_"
) -> None:
    """Create or migrate the namespace's tables (what `init()` does)."""
    db = Database(url, schema=schema, table_prefix=table_prefix)
    try:
        await db.ensure_schema(SystemClock().now())
    finally:
        await db.close()


async def drop_tables(engine: AsyncEngine, *, schema: str | None, table_prefix: str) -> None:
    """Drop the namespace's tables (not its schema), children first."""
    tables = build_tables(schema, table_prefix).metadata
    async with translate_errors(), engine.begin() as conn:
        await conn.run_sync(lambda sync: tables.drop_all(sync, checkfirst=True))


async def drop_namespace(
    url: str, *, schema: str | None = None, table_prefix: str = "pikku_"
) -> None:
    """Drop the namespace: its schema with everything in it on PostgreSQL, else its tables."""
    engine = _engine(url)
    try:
        if schema is not None and engine.dialect.name == "postgresql":
            async with translate_errors(), engine.begin() as conn:
                quoted = conn.dialect.identifier_preparer.quote_identifier(schema)
                await conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
        else:
            await drop_tables(engine, schema=schema, table_prefix=table_prefix)
    finally:
        await engine.dispose()


async def drop_matching(url: str, marker: str) -> list[str]:
    """Drop every schema (PostgreSQL) or table (elsewhere) whose name contains `marker`."""

    def drop(conn: Connection) -> list[str]:
        preparer = conn.dialect.identifier_preparer
        if conn.dialect.name == "postgresql":
            names = [n for n in inspect(conn).get_schema_names() if marker in n]
            for name in names:
                conn.exec_driver_sql(
                    f"DROP SCHEMA IF EXISTS {preparer.quote_identifier(name)} CASCADE"
                )
            return names
        names = [n for n in inspect(conn).get_table_names() if marker in n]
        if names:
            meta = MetaData()
            meta.reflect(conn, only=names)
            meta.drop_all(conn)
        return names

    engine = _engine(url)
    try:
        async with translate_errors(), engine.begin() as conn:
            return await conn.run_sync(drop)
    finally:
        await engine.dispose()
