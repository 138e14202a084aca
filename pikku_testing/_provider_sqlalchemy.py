"""Providers of the SQLAlchemy backends: `sqlite`, `sqlalchemy-sqlite`, `sqlalchemy-postgres`,
`sqlalchemy-mysql` (docs/contract.md).

SQLite gets a fresh file (a copy of a template migrated once per worker) or a fresh
`:memory:` engine per test. The server backends keep a small
pool of namespaces per worker (a PostgreSQL schema, a MySQL table prefix on the URL's
database), migrated once and emptied with DELETEs after each test, so a test costs a few
statements instead of a migration; the session's end drops every namespace it created. Names
carry the worker id and the session token, so concurrent sessions never meet. Each `Storage`
gets its own engine; no loop-bound object outlives its test.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Final

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from pikku_storage import Clock, Storage
from pikku_storage.backends import driver_url
from pikku_storage.sqlalchemy import open_storage, storage_from_engine
from pikku_storage.sqlalchemy._admin import create_namespace, drop_namespace
from pikku_storage.sqlalchemy._connection import Database, create_engine
from pikku_storage.sqlite import open_storage as open_sqlite
from pikku_testing.contract._capabilities import Capability
from pikku_testing.providers import BackendProvider, Namespace, NamespaceRequest

__all__ = [
    "SqlAlchemyMysqlProvider",
    "SqlAlchemyPostgresProvider",
    "SqlAlchemySqliteProvider",
    "SqliteProvider",
]

logger = logging.getLogger(__name__)

_SERVER_CAPABILITIES: Final = frozenset(
    {Capability.CROSS_PROCESS, Capability.CROSS_PROCESS_LOCKS, Capability.PERSISTENT}
)


def _options(options: dict[str, object]) -> dict[str, Any]:
    return dict(options)  # checked by the backend's open_storage


class SqliteProvider(BackendProvider):
    """The embedded preset on a fresh file in the test's temporary directory; another OS
    process can open it (`CROSS_PROCESS`), locks stay within a process.

    The file is a copy of a template migrated once per worker, so a test pays a file copy
    instead of a migration.
    """

    name = "sqlite"
    capabilities = frozenset({Capability.CROSS_PROCESS, Capability.PERSISTENT})

    def __init__(self) -> None:
        self._template: Path | None = None

    async def _migrated_template(self) -> Path:
        if self._template is None:
            template = Path(tempfile.mkdtemp(prefix="pikku-sqlite-")) / "template.db"
            async with open_sqlite(f"sqlite:///{template}"):
                pass  # init migrates; closing the last connection checkpoints the WAL
            self._template = template
        return self._template

    @asynccontextmanager
    async def namespace(self, request: NamespaceRequest) -> AsyncIterator[Namespace]:
        path = Path(request.tmp_path) / f"pikku-{request.label}.db"
        shutil.copyfile(await self._migrated_template(), path)
        url = f"sqlite:///{path}"
        try:
            yield Namespace(provider=self, open_args=(url, {}), state={"url": url})
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{suffix}")

    def make_storage(self, namespace: Namespace, clock: Clock, **options: object) -> Storage:
        url = namespace.state["url"]
        assert isinstance(url, str)
        return open_sqlite(url, clock=clock, **_options(options))

    async def aclose(self) -> None:
        if self._template is not None:
            shutil.rmtree(self._template.parent, ignore_errors=True)
            self._template = None


class SqlAlchemySqliteProvider(BackendProvider):
    """The SQLAlchemy backend on an in-memory SQLite database: one engine per test, which every
    `Storage` of the namespace borrows (a second engine could not see the data)."""

    name = "sqlalchemy-sqlite"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    @asynccontextmanager
    async def namespace(self, request: NamespaceRequest) -> AsyncIterator[Namespace]:
        engine = create_engine("sqlite+aiosqlite://")
        try:
            yield Namespace(provider=self, state={"engine": engine})
        finally:
            await engine.dispose()

    def make_storage(self, namespace: Namespace, clock: Clock, **options: object) -> Storage:
        engine = namespace.state["engine"]
        assert isinstance(engine, AsyncEngine)
        return storage_from_engine(engine, clock=clock, **_options(options))


class _ServerProvider(BackendProvider):
    """Namespaces on a server, pooled per worker: migrated once, emptied after each test."""

    capabilities = _SERVER_CAPABILITIES
    namespace_option: ClassVar[str]

    def __init__(self) -> None:
        self._free: list[str] = []
        self._created: list[str] = []
        self._url: str | None = None

    def _new_name(self, request: NamespaceRequest) -> str:
        raise NotImplementedError

    def _namespace(self, name: str) -> tuple[str | None, str]:
        """The `(schema, table_prefix)` of namespace `name`."""
        raise NotImplementedError

    def _database(self, engine: AsyncEngine, name: str) -> Database:
        schema, table_prefix = self._namespace(name)
        return Database(engine, schema=schema, table_prefix=table_prefix)

    @asynccontextmanager
    async def namespace(self, request: NamespaceRequest) -> AsyncIterator[Namespace]:
        assert request.server_url is not None
        url = self._url = driver_url(request.server_url)
        engine = create_engine(url, engine_options={"poolclass": NullPool})
        try:
            if self._free:
                name = self._free.pop()
            else:
                name = self._new_name(request)
                self._created.append(name)
                schema, table_prefix = self._namespace(name)
                await create_namespace(engine, schema=schema, table_prefix=table_prefix)
            options: dict[str, object] = {self.namespace_option: name}
            state: dict[str, object] = {"url": url, **options}
            try:
                yield Namespace(provider=self, open_args=(url, options), state=state)
            finally:
                if await self._empty(engine, name):
                    self._free.append(name)
        finally:
            await engine.dispose()

    async def _empty(self, engine: AsyncEngine, name: str) -> bool:
        """Delete every row of the namespace, children first; `False` if that failed."""
        db = self._database(engine, name)
        tables = list(reversed(db.tables.metadata.sorted_tables))
        tables.remove(db.tables.schema_version)

        def body(conn: Any) -> None:
            for table in tables:
                conn.execute(delete(table))

        try:
            await db.write(body)
        except Exception:
            return False
        return True

    def make_storage(self, namespace: Namespace, clock: Clock, **options: object) -> Storage:
        url = namespace.state["url"]
        assert isinstance(url, str)
        given = _options(options)
        given[self.namespace_option] = namespace.state[self.namespace_option]
        return open_storage(url, clock=clock, **given)

    async def aclose(self) -> None:
        if self._url is None or not self._created:
            return
        try:
            for name in self._created:
                try:
                    schema, table_prefix = self._namespace(name)
                    await drop_namespace(self._url, schema=schema, table_prefix=table_prefix)
                except Exception:
                    logger.warning("could not drop test namespace %s", name, exc_info=True)
        finally:
            self._created.clear()
            self._free.clear()


class SqlAlchemyPostgresProvider(_ServerProvider):
    """The SQLAlchemy backend on PostgreSQL through psycopg, a schema per namespace."""

    name = "sqlalchemy-postgres"
    server = "postgres"
    namespace_option = "schema"

    def _new_name(self, request: NamespaceRequest) -> str:
        return f"pk_sa_{request.worker}_{request.label}"

    def _namespace(self, name: str) -> tuple[str | None, str]:
        return name, "pikku_"


class SqlAlchemyMysqlProvider(_ServerProvider):
    """The SQLAlchemy backend on MySQL 8 / MariaDB through aiomysql, a table prefix per
    namespace on the URL's database."""

    name = "sqlalchemy-mysql"
    server = "mysql"
    namespace_option = "table_prefix"

    def _new_name(self, request: NamespaceRequest) -> str:
        return f"pk{request.worker}_{request.label}_"

    def _namespace(self, name: str) -> tuple[str | None, str]:
        return None, name
