"""Reading a namespace's recorded schema version without creating or changing anything."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from pikku_storage.sqlalchemy._connection import is_memory_sqlite, parse_url
from pikku_storage.sqlalchemy._errors import translate_errors
from pikku_storage.sqlalchemy._migrations import current_version
from pikku_storage.sqlalchemy._schema import build_tables

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
    engine = create_async_engine(parsed)
    try:
        async with translate_errors(), engine.connect() as conn:
            return await conn.run_sync(lambda sync: current_version(sync, tables)) or None
    finally:
        await engine.dispose()


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
