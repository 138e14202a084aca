"""Reading a namespace's recorded schema version without creating or changing anything."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pikku_storage.errors import StorageUnavailable
from pikku_storage.sqlalchemy._connection import THREAD_DRIVER, is_memory_sqlite, parse_url
from pikku_storage.sqlalchemy._errors import is_unavailable, translate_errors
from pikku_storage.sqlalchemy._migrations import current_version
from pikku_storage.sqlalchemy._schema import Tables, build_tables

__all__ = ["schema_version"]


async def schema_version(
    url: str | URL, *, schema: str | None = None, table_prefix: str = "pikku_"
) -> int | None:
    """The schema version recorded in the namespace at `url` (compare with `LATEST_VERSION`),
    or `None` when nothing was migrated there. Read-only: an SQLite file is opened read-only
    and a missing one is not created, so a deploy check can run it against a live database.

    Raises: `InvalidValue` for a URL without an async driver or a bad name;
    `StorageUnavailable` when the database cannot be reached.
    """
    tables = build_tables(schema, table_prefix)
    parsed = _read_only(parse_url(url))
    if parsed is None:
        return None
    if parsed.drivername == THREAD_DRIVER:  # the SQLite preset: the stdlib driver in a thread
        return await asyncio.to_thread(_sync_version, parsed, tables)
    engine = create_async_engine(parsed)
    try:
        async with translate_errors(), engine.connect() as conn:
            return await conn.run_sync(lambda sync: current_version(sync, tables)) or None
    finally:
        await engine.dispose()


def _sync_version(url: URL, tables: Tables) -> int | None:
    engine = create_sync_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return current_version(conn, tables) or None
    except sa_exc.DBAPIError as error:
        if is_unavailable(error):
            raise StorageUnavailable(f"database unavailable: {type(error).__name__}") from error
        raise
    finally:
        engine.dispose()


def _read_only(url: URL) -> URL | None:
    """`url` opening an SQLite file read-only; `None` when there is nothing to read (no file,
    or an in-memory database, which starts empty)."""
    if url.get_backend_name() != "sqlite":
        return url
    if is_memory_sqlite(url):
        return None
    path = Path(url.database or "")
    if not path.is_file():
        return None
    return url.set(database=f"file:{path.absolute()}", query={"mode": "ro", "uri": "true"})
