"""Provider of the `postgres` backend: a migrated schema per test, reused per worker.

A schema is created and migrated once, then emptied and handed to the next test of the same
worker (docs/contract.md: migrate once per worker, empty it between tests). Its name carries the
worker and the label of the test that created it. Connections here are opened per call and
closed again, so nothing bound to one test's event loop outlives it; `aclose()` drops every
schema this provider created.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import psycopg
from psycopg import sql

from pikku_storage import Clock, PikkuStorageError, Storage
from pikku_storage.postgres import LATEST_VERSION, open_storage
from pikku_storage.postgres._admin import connect, create_namespace, drop_namespace
from pikku_testing.contract._capabilities import Capability
from pikku_testing.providers import BackendProvider, Namespace, NamespaceRequest

__all__ = ["PostgresProvider"]

logger = logging.getLogger(__name__)

SCHEMA_PREFIX: Final = "pikku_test_"
# Small pools: several storages per test and other test sessions share the server.
STORAGE_DEFAULTS: Final[dict[str, object]] = {"min_size": 1, "max_size": 6, "timeout": 15.0}

_TABLES: Final = sql.SQL(
    "SELECT tablename FROM pg_catalog.pg_tables"
    " WHERE schemaname = %(schema)s AND tablename <> 'pikku_migrations' ORDER BY tablename"
)
_DELETE: Final = sql.SQL("DELETE FROM {table}")
# Cleanup needs no durability: do not wait for the WAL flush.
_CLEANUP_SETTINGS: Final = sql.SQL(
    "SET LOCAL lock_timeout = '5s'; SET LOCAL synchronous_commit = off"
)
_VERSION: Final = sql.SQL("SELECT max(version) FROM {versions}")


class _Unusable(Exception):
    """A schema a test left at another migration version: not reused."""


class PostgresProvider(BackendProvider):
    """Schemas `pikku_test_<worker>_<label>` on the configured server."""

    name = "postgres"
    server = "postgres"
    capabilities = frozenset(
        {Capability.CROSS_PROCESS, Capability.CROSS_PROCESS_LOCKS, Capability.PERSISTENT}
    )

    def __init__(self) -> None:
        self._free: dict[str, list[str]] = {}  # server URL -> clean, migrated schemas
        self._created: dict[str, set[str]] = {}  # server URL -> every schema made here
        self._table_names: dict[str, list[str]] = {}

    @asynccontextmanager
    async def namespace(self, request: NamespaceRequest) -> AsyncIterator[Namespace]:
        url = request.server_url
        if url is None:
            raise ValueError("the postgres provider needs a server URL")
        schema = await self._take(url, f"{SCHEMA_PREFIX}{request.worker}_{request.label}")
        try:
            yield Namespace(
                provider=self,
                open_args=(url, {"schema": schema}),
                state={"url": url, "schema": schema},
            )
        finally:
            await self._give_back(url, schema)

    def make_storage(self, namespace: Namespace, clock: Clock, **options: object) -> Storage:
        url, schema = namespace.state["url"], namespace.state["schema"]
        assert isinstance(url, str)
        assert isinstance(schema, str)
        merged = {**STORAGE_DEFAULTS, **options}
        return open_storage(url, schema=schema, clock=clock, **merged)  # type: ignore[arg-type]  # options are checked by open_storage

    async def aclose(self) -> None:
        """Drop every schema this provider created (each attempt bounded by a lock timeout)."""
        for url, schemas in self._created.items():
            for schema in sorted(schemas):
                await self._drop(url, schema)
        self._created.clear()
        self._free.clear()
        self._table_names.clear()

    async def _take(self, url: str, new_name: str) -> str:
        free = self._free.setdefault(url, [])
        if free:
            return free.pop()
        self._created.setdefault(url, set()).add(new_name)
        await create_namespace(url, schema=new_name)
        return new_name

    async def _give_back(self, url: str, schema: str) -> None:
        """Empty the schema for the next test; drop it instead if that fails.

        `DELETE` of every table in one transaction: on test-sized data it is an order of
        magnitude faster than `TRUNCATE`, which rewrites and syncs every table.
        """
        try:
            async with await connect(url) as conn:
                tables = await self._tables(conn, schema)
                deletes = [_DELETE.format(table=sql.Identifier(schema, t)) for t in tables]
                versions = sql.Identifier(schema, "pikku_migrations")
                cur = await conn.execute(_VERSION.format(versions=versions))
                row = await cur.fetchone()
                if row is None or row[0] != LATEST_VERSION:
                    raise _Unusable(schema)
                async with conn.transaction():
                    await conn.execute(_CLEANUP_SETTINGS)
                    await conn.execute(sql.SQL("; ").join(deletes))
        except (psycopg.Error, _Unusable):
            logger.warning("could not reset %s; dropping it", schema, exc_info=True)
            if await self._drop(url, schema):
                self._created.get(url, set()).discard(schema)
            return
        self._free.setdefault(url, []).append(schema)

    async def _drop(self, url: str, schema: str) -> bool:
        """Drop `schema`; `False` (logged) if the server refused or a lock held it too long."""
        try:
            await drop_namespace(url, schema=schema)
        except (psycopg.Error, PikkuStorageError):
            logger.warning("could not drop %s", schema, exc_info=True)
            return False
        return True

    async def _tables(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str
    ) -> list[str]:
        """The schema's tables but the version table (cached: a migrated schema's are fixed)."""
        tables = self._table_names.get(schema)
        if tables is None:
            cur = await conn.execute(_TABLES, {"schema": schema})
            tables = self._table_names[schema] = [str(row[0]) for row in await cur.fetchall()]
        return tables
