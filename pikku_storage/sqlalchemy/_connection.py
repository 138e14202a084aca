"""One namespace on one `AsyncEngine`: engine ownership, transactions with retries, init.

A `Database` is built from a URL (it creates and owns the engine) or from an engine (borrowed,
left open by `close()`). Every service call is one `run(body, write=...)`: a connection, the
dialect's BEGIN (SQLite `BEGIN IMMEDIATE` for writes), the body, COMMIT; deadlocks and
serialization failures re-run the whole body at most three times (Spec: 01 §5.4, 02 §5.3).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from pikku_storage import _validate as v
from pikku_storage.clock import Clock
from pikku_storage.errors import InvalidValue, PikkuStorageError, StorageUnavailable
from pikku_storage.interfaces._base import Service
from pikku_storage.sqlalchemy._dialects import DialectOps, chunks, ops_for
from pikku_storage.sqlalchemy._errors import is_retryable, translate_errors
from pikku_storage.sqlalchemy._migrations import migrate
from pikku_storage.sqlalchemy._schema import Tables, build_tables

__all__ = [
    "MAX_RETRIES",
    "Bind",
    "Database",
    "SqlAlchemyService",
    "chunks",
    "create_engine",
    "is_memory_sqlite",
    "parse_url",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Bind = str | URL | AsyncEngine
MAX_RETRIES: Final = 3
DEFAULT_BUSY_TIMEOUT: Final = 10.0

# Process-wide facts about engines, dropped with the engine.
_MIGRATED: weakref.WeakKeyDictionary[Engine, set[tuple[str | None, str]]] = (
    weakref.WeakKeyDictionary()
)
_GATES: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()
_CONFIGURED: weakref.WeakSet[Engine] = weakref.WeakSet()  # engines `create_engine` set up


def is_memory_sqlite(url: URL) -> bool:
    """Whether `url` names an SQLite in-memory database."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or url.query.get("mode") == "memory"
    )


def _sqlite_pragmas(busy_timeout: float, wal: bool) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    return on_connect


def parse_url(url: str | URL) -> URL:
    """`url` parsed; `InvalidValue` unless it names an explicit (async) driver."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as error:
        raise InvalidValue(f"not a database URL: {error}") from None
    if "+" not in parsed.drivername:
        raise InvalidValue(
            "an SQLAlchemy URL needs an explicit async driver, such as postgresql+psycopg://, "
            f"mysql+aiomysql:// or sqlite+aiosqlite:/// (got {parsed.drivername}://)"
        )
    return parsed


def create_engine(
    url: str | URL,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    engine_options: Mapping[str, Any] | None = None,
) -> AsyncEngine:
    """An engine this library will own, configured per dialect; no I/O.

    PostgreSQL and MySQL get `pool_pre_ping` (a dropped connection is replaced on checkout);
    MySQL sessions run `READ COMMITTED`; SQLite connections set `foreign_keys = ON`, a busy
    timeout and WAL (files), and `:memory:` keeps one shared connection. Raises: `InvalidValue`
    for a URL without an async driver.
    """
    busy_timeout = v.positive_seconds("busy_timeout", busy_timeout)
    parsed = parse_url(url)
    options: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "mysql", "mariadb"):
        options["pool_pre_ping"] = True
    if backend in ("mysql", "mariadb"):
        options["isolation_level"] = "READ COMMITTED"
    memory = is_memory_sqlite(parsed)
    if memory:
        options["poolclass"] = StaticPool
    options.update(engine_options or {})
    try:
        engine = create_async_engine(parsed, **options)
    except (sa_exc.InvalidRequestError, sa_exc.ArgumentError) as error:
        raise InvalidValue(f"cannot use {parsed.drivername}:// with asyncio: {error}") from None
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout, not memory))
    _CONFIGURED.add(engine.sync_engine)
    return engine


class Database:
    """The engine, tables and dialect operations of one namespace (schema + table prefix)."""

    def __init__(
        self,
        bind: Bind,
        *,
        schema: str | None,
        table_prefix: str,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(bind, AsyncEngine):
            if engine_options:
                raise InvalidValue("engine_options apply only when the service builds its engine")
            self.owned = False
            self.engine = bind
        elif isinstance(bind, str | URL):
            self.owned = True
            self.engine = create_engine(
                bind, busy_timeout=busy_timeout, engine_options=engine_options
            )
        else:
            raise InvalidValue(f"expected a URL or an AsyncEngine, got {type(bind).__name__}")
        self.ops: DialectOps = ops_for(self.engine.dialect)
        if schema is not None and not self.ops.has_schemas:
            raise InvalidValue(f"{self.ops.name} has no schemas; use table_prefix")
        self.tables: Tables = build_tables(schema, table_prefix)
        if self.ops.name == "mysql" and self.engine.sync_engine not in _CONFIGURED:
            # A foreign engine keeps its own settings; our transactions still need this level.
            self.engine = self.engine.execution_options(isolation_level="READ COMMITTED")
        self.schema = schema
        self.table_prefix = table_prefix
        url = self.engine.url
        self.namespace = f"{url.database or ''}\x00{schema or ''}\x00{table_prefix}"
        self.memory = is_memory_sqlite(url) or isinstance(self.engine.pool, StaticPool)
        self._closed = False

    def lock_space(self) -> object:
        """What one set of process-local locks covers: the database file (the engine for
        `:memory:`) on SQLite, the server and database elsewhere."""
        if self.memory:
            return self.engine.sync_engine
        url = self.engine.url
        if self.ops.name == "sqlite":
            return str(Path(url.database or "").resolve())
        return f"{url.get_backend_name()}://{url.host}:{url.port}/{url.database}"

    async def close(self) -> None:
        """Dispose an owned engine (idempotent); a borrowed one stays open."""
        if self.owned and not self._closed:
            self._closed = True
            await self.engine.dispose()

    async def checkout(self) -> AsyncConnection:
        """A pooled connection the caller closes; failing to get one is `StorageUnavailable`."""
        try:
            return await self.engine.connect()
        except PikkuStorageError:
            raise
        except (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError) as error:
            raise StorageUnavailable(
                f"cannot connect to the database: {type(error).__name__}"
            ) from error

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for the body, returned to the pool afterwards."""
        conn = await self.checkout()
        try:
            yield conn
        finally:
            await conn.close()

    def _gate(self) -> asyncio.Lock | nullcontext[None]:
        """One shared connection (`:memory:`) carries one transaction at a time."""
        if not self.memory:
            return nullcontext()
        key = self.engine.sync_engine
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = asyncio.Lock()
        return gate

    async def run(self, body: Callable[[AsyncConnection], Awaitable[T]], *, write: bool) -> T:
        """Run `body` in one transaction, re-running it after a deadlock or serialization
        failure at most `MAX_RETRIES` times."""
        attempt = 0
        logger.debug("%s: %s", "write" if write else "read", getattr(body, "__qualname__", body))
        while True:
            try:
                async with translate_errors(), self._gate(), self.connect() as conn:
                    await self.ops.begin(conn, write=write)
                    result = await body(conn)
                    await conn.commit()
                    return result
            except Exception as error:
                if attempt >= MAX_RETRIES or not is_retryable(error):
                    raise
                attempt += 1
                logger.warning(
                    "transaction retried after a deadlock or serialization failure (%d/%d)",
                    attempt,
                    MAX_RETRIES,
                )

    async def write(self, body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`run(body, write=True)`."""
        return await self.run(body, write=True)

    async def read(self, body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`run(body, write=False)`: one consistent snapshot where the dialect gives one."""
        return await self.run(body, write=False)

    async def ensure_schema(self, now: datetime) -> None:
        """Create or migrate this namespace's tables once per engine (01 §5.4, 00 §5)."""
        key = self.engine.sync_engine
        done = _MIGRATED.setdefault(key, set())
        if (self.schema, self.table_prefix) in done:
            return
        async with translate_errors(), self._gate():
            await migrate(self, now)
        done.add((self.schema, self.table_prefix))


class SqlAlchemyService(Service):
    """What every SQLAlchemy service shares: its `Database`, `init()` and `close()`.

    `bind` is an async URL (`postgresql+psycopg://…`, `mysql+aiomysql://…`,
    `sqlite+aiosqlite:///…`), whose engine the service owns, or an `AsyncEngine` it borrows.
    `schema` (PostgreSQL, MySQL) and `table_prefix` name the namespace; `busy_timeout` (seconds,
    SQLite) and `engine_options` apply to an engine built from a URL. `init()` creates or
    migrates the namespace's tables (once per engine); `close()` disposes an owned engine and
    leaves a borrowed one open (Spec: 00 §5).
    """

    _db: Database

    def __init__(
        self,
        bind: Bind,
        *,
        schema: str | None = None,
        table_prefix: str = "pikku_",
        clock: Clock | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._attach(
            bind,
            schema=schema,
            table_prefix=table_prefix,
            busy_timeout=busy_timeout,
            engine_options=engine_options,
        )

    def _attach(
        self,
        bind: Bind,
        *,
        schema: str | None,
        table_prefix: str,
        busy_timeout: float,
        engine_options: Mapping[str, Any] | None,
    ) -> None:
        """Build the service's `Database` (no I/O)."""
        self._db = Database(
            bind,
            schema=schema,
            table_prefix=table_prefix,
            busy_timeout=busy_timeout,
            engine_options=engine_options,
        )

    @property
    def engine(self) -> AsyncEngine:
        """The engine the service runs on (owned when built from a URL)."""
        return self._db.engine

    @property
    def metadata(self) -> MetaData:
        """The namespace's tables, for Alembic's `target_metadata`."""
        return self._db.tables.metadata

    async def _init(self) -> None:
        await self._db.ensure_schema(self._now())

    async def _close(self) -> None:
        await self._db.close()
