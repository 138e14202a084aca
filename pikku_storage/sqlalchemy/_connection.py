"""One namespace on one engine: engine ownership, one call = one transaction = one hop, init.

A `Database` is built from a URL (it creates and owns the engine) or from an engine (borrowed,
left open by `close()`). Every service call is one `run(body, write=...)` whose `body` is a
plain function of a sync `Connection`, so the whole transaction runs in one place:

- SQLite preset (`sqlite+pysqlite`): SQLAlchemy's sync engine on the stdlib driver, the whole
  transaction in a dedicated worker thread (one writer thread taking `BEGIN IMMEDIATE`, so the
  file's write lock is taken first and `busy_timeout` applies; two reader threads for plain
  reads under WAL; one thread for `:memory:`). One thread hop per call.
- Async engines (psycopg, aiomysql, aiosqlite): the whole transaction in one greenlet
  (`greenlet_spawn`), no pool pre-ping and no reset-on-return rollback on engines we build.

Deadlocks, serialization failures, SQLite `SQLITE_BUSY` before the busy timeout and a stale
pooled connection (before COMMIT was sent) re-run the whole body through `_retry.retry`
(see docs/operations.md#storage-layout, docs/concepts.md#errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import MetaData, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.util import greenlet_spawn

from pikku_storage import _validate as v
from pikku_storage._retry import RetryPolicy, retry
from pikku_storage.clock import Clock
from pikku_storage.errors import InvalidValue, PikkuStorageError, StorageUnavailable
from pikku_storage.interfaces._base import Service
from pikku_storage.sqlalchemy import _fast
from pikku_storage.sqlalchemy._dialects import DialectOps, chunks, ops_for
from pikku_storage.sqlalchemy._errors import (
    is_retryable,
    is_sqlite_busy,
    is_unavailable,
    translate_errors,
)
from pikku_storage.sqlalchemy._markers import Markers
from pikku_storage.sqlalchemy._migrations import migrate
from pikku_storage.sqlalchemy._schema import Tables, build_tables
from pikku_storage.sqlalchemy._statements import Statements

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_SYNCHRONOUS",
    "RETRY_POLICY",
    "Bind",
    "Database",
    "SqlAlchemyService",
    "chunks",
    "create_engine",
    "dispose_engine",
    "is_memory_sqlite",
    "parse_url",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Bind = str | URL | AsyncEngine | Engine
Body = Callable[[Connection], T]
DEFAULT_BUSY_TIMEOUT: Final = 10.0
DEFAULT_SYNCHRONOUS: Final = "normal"
SYNCHRONOUS_MODES: Final = ("normal", "full")
RETRY_POLICY: Final = RetryPolicy(attempts=10, first_delay=0.002, max_delay=0.2)
# SQLite: an early SQLITE_BUSY is re-run until the busy timeout has passed (the time bounds it).
SQLITE_BUSY_POLICY: Final = RetryPolicy(attempts=1_000_000, first_delay=0.001, max_delay=0.05)
READER_THREADS: Final = 2
THREAD_DRIVER: Final = "sqlite+pysqlite"

# Process-wide facts about engines, dropped with the engine.
_MIGRATED: weakref.WeakKeyDictionary[Engine, set[tuple[str | None, str]]] = (
    weakref.WeakKeyDictionary()
)
_GATES: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()
_CONFIGURED: weakref.WeakSet[Engine] = weakref.WeakSet()  # engines `create_engine` set up
_RUNNERS: weakref.WeakKeyDictionary[Engine, _ThreadRunner] = weakref.WeakKeyDictionary()
_PACKET_LIMITS: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


def is_memory_sqlite(url: URL) -> bool:
    """Whether `url` names an SQLite in-memory database."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or url.query.get("mode") == "memory"
    )


def synchronous_mode(value: object) -> str:
    """The `synchronous` option checked: `"normal"` (default) or `"full"`."""
    if not isinstance(value, str) or value.lower() not in SYNCHRONOUS_MODES:
        raise InvalidValue(f"synchronous must be 'normal' or 'full', got {value!r}")
    return value.lower()


def _sqlite_pragmas(
    busy_timeout: float, wal: bool, synchronous: str | None, autocommit: bool
) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        if autocommit:  # the stdlib driver: we emit BEGIN/COMMIT ourselves
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
            if synchronous is not None:
                cursor.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        finally:
            cursor.close()

    return on_connect


def parse_url(url: str | URL) -> URL:
    """`url` parsed; `InvalidValue` unless it names an explicit driver."""
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
    synchronous: str = DEFAULT_SYNCHRONOUS,
    engine_options: Mapping[str, Any] | None = None,
) -> Any:
    """An engine this library will own, configured per dialect; no I/O.

    `sqlite+pysqlite` (the SQLite preset) gives a sync `Engine` run in worker threads; every
    other URL an `AsyncEngine`. PostgreSQL and MySQL: no pre-ping and no rollback when a
    connection goes back to the pool (every call ends its transaction itself; a connection
    found dead is replaced and the call re-run when nothing was committed); MySQL sessions run
    `READ COMMITTED`. SQLite: `foreign_keys = ON`, a busy timeout, WAL and
    `synchronous = NORMAL` (or `FULL`) for files; `:memory:` keeps one connection.
    Raises: `InvalidValue` for a URL without a usable driver or a bad option value.
    """
    busy_timeout = v.positive_seconds("busy_timeout", busy_timeout)
    synchronous = synchronous_mode(synchronous)
    parsed = parse_url(url)
    options: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "mysql", "mariadb"):
        options["pool_reset_on_return"] = None
    if backend in ("mysql", "mariadb"):
        options["isolation_level"] = "READ COMMITTED"
    memory = is_memory_sqlite(parsed)
    threaded = parsed.drivername == THREAD_DRIVER
    if threaded:
        # Each worker thread keeps its own connection for the engine's life.
        options["poolclass"] = NullPool
        options["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout}
    elif memory:
        options["poolclass"] = StaticPool
    options.update(engine_options or {})
    try:
        engine: Any = (
            create_sync_engine(parsed, **options)
            if threaded
            else create_async_engine(parsed, **options)
        )
    except (sa_exc.InvalidRequestError, sa_exc.ArgumentError, TypeError) as error:
        if engine_options and isinstance(error, sa_exc.ArgumentError | TypeError):
            raise InvalidValue(f"bad engine_options for {parsed.drivername}://: {error}") from None
        raise InvalidValue(f"cannot use {parsed.drivername}:// with asyncio: {error}") from None
    sync_engine: Engine = engine if threaded else engine.sync_engine
    if backend == "sqlite":
        pragmas = _sqlite_pragmas(
            busy_timeout, not memory, None if memory else synchronous, threaded
        )
        event.listen(sync_engine, "connect", pragmas)
    _CONFIGURED.add(sync_engine)
    return engine


async def dispose_engine(engine: AsyncEngine | Engine) -> None:
    """Stop an engine's worker threads (SQLite preset) and close its connections."""
    if isinstance(engine, AsyncEngine):
        await engine.dispose()
        return
    runner = _RUNNERS.pop(engine, None)
    if runner is not None:
        await runner.close()
    engine.dispose()


# --- worker threads (SQLite preset) ---------------------------------------------------------


class _Worker:
    """Threads that each keep one connection and run whole transactions from one queue."""

    def __init__(self, engine: Engine, name: str, threads: int) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"pikku-sqlite-{name}-{n}", daemon=True)
            for n in range(threads)
        ]
        self._started = False
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                for thread in self._threads:
                    thread.start()

    def _serve(self) -> None:
        conn: Connection | None = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            fn, args, loop, future = item
            try:
                if conn is None:
                    conn = self._engine.connect()
                # Listeners added to the engine after this long-lived connection was made
                # (tracing, statement capture) apply from the next call on.
                conn._has_events = self._engine._has_events
                result = fn(conn, *args)
            except BaseException as error:
                if conn is not None and conn.invalidated:
                    _close_quietly(conn)
                    conn = None
                _resolve(loop, future, None, error)
            else:
                _resolve(loop, future, result, None)
        if conn is not None:
            _close_quietly(conn)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._started:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, args, loop, future))
        return await future

    def stop(self) -> list[threading.Thread]:
        started = self._started
        self._started = True  # no thread starts after this
        if not started:
            return []
        for _ in self._threads:
            self._queue.put(None)
        return self._threads


def _close_quietly(conn: Connection) -> None:
    try:
        conn.close()
    except Exception:
        logger.debug("closing an SQLite connection failed", exc_info=True)


def _resolve(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return  # the caller was cancelled; the transaction ran to its end anyway
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _ThreadRunner:
    """The writer thread and the reader threads of one SQLite engine."""

    def __init__(self, engine: Engine, memory: bool) -> None:
        self.writer = _Worker(engine, "writer", 1)
        self.reader = self.writer if memory else _Worker(engine, "reader", READER_THREADS)

    async def close(self) -> None:
        threads = self.writer.stop()
        if self.reader is not self.writer:
            threads += self.reader.stop()
        if threads:
            await asyncio.to_thread(_join, threads)


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


def _thread_transaction(conn: Connection, body: Body[T], write: bool) -> T:
    """One transaction on a worker thread's connection, BEGIN and COMMIT on the driver."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        result = body(conn)
    except BaseException:
        _thread_rollback(conn, raw)
        raise
    try:
        if conn.in_transaction():
            conn.commit()  # the driver's commit, and SQLAlchemy's state with it
        else:
            raw.commit()
    except BaseException as error:
        error.pikku_at_commit = True  # type: ignore[attr-defined]
        _thread_rollback(conn, raw)
        raise
    return result


def _thread_rollback(conn: Connection, raw: Any) -> None:
    try:
        if conn.in_transaction():
            conn.rollback()
    finally:
        if raw.in_transaction:
            raw.rollback()


def _thread_connection(conn: Connection, fn: Body[T]) -> T:
    """`fn(conn)` with no transaction of ours; whatever it left open is rolled back."""
    try:
        return fn(conn)
    finally:
        conn.rollback()
        raw = conn.connection.dbapi_connection
        if raw is not None and raw.in_transaction:
            raw.rollback()


# --- the namespace ----------------------------------------------------------------------


class Database:
    """The engine, tables and dialect operations of one namespace (schema + table prefix)."""

    def __init__(
        self,
        bind: Bind,
        *,
        schema: str | None,
        table_prefix: str,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(bind, AsyncEngine | Engine):
            if engine_options:
                raise InvalidValue("engine_options apply only when the service builds its engine")
            self.owned = False
            engine: AsyncEngine | Engine = bind
        elif isinstance(bind, str | URL):
            self.owned = True
            engine = create_engine(
                bind,
                busy_timeout=busy_timeout,
                synchronous=synchronous,
                engine_options=engine_options,
            )
        else:
            raise InvalidValue(f"expected a URL or an AsyncEngine, got {type(bind).__name__}")
        self.busy_timeout = v.positive_seconds("busy_timeout", busy_timeout)
        self.ops: DialectOps = ops_for(engine.dialect)
        if schema is not None and not self.ops.has_schemas:
            raise InvalidValue(f"{self.ops.name} has no schemas; use table_prefix")
        self.tables: Tables = build_tables(schema, table_prefix)
        self.statements = Statements(self.tables, self.ops, engine.dialect)
        self.markers = Markers(self.statements, self.ops, self.execute)
        sync_engine = engine if isinstance(engine, Engine) else engine.sync_engine
        if self.ops.name == "mysql" and sync_engine not in _CONFIGURED:
            # A foreign engine keeps its own settings; our transactions still need this level.
            assert isinstance(engine, AsyncEngine)
            engine = engine.execution_options(isolation_level="READ COMMITTED")
        self.engine = engine
        self.sync_engine: Engine = engine if isinstance(engine, Engine) else engine.sync_engine
        self.schema = schema
        self.table_prefix = table_prefix
        url = self.engine.url
        self.namespace = f"{url.database or ''}\x00{schema or ''}\x00{table_prefix}"
        self.memory = is_memory_sqlite(url) or isinstance(self.sync_engine.pool, StaticPool)
        self.threaded = isinstance(engine, Engine)
        # Prebuilt statements straight on the driver cursor (`_fast`): the SQLite preset and
        # the server dialects (psycopg, aiomysql); not aiosqlite, whose cursor hops threads.
        self.fast = self.threaded or self.ops.name in ("postgresql", "mysql")
        # Whether a missing parent row is a foreign-key violation here: always on PostgreSQL
        # and InnoDB, on SQLite only on engines this library configured (PRAGMA foreign_keys).
        self.enforces_foreign_keys = self.ops.name != "sqlite" or sync_engine in _CONFIGURED
        self._runner: _ThreadRunner | None = None
        if isinstance(engine, Engine):
            runner = _RUNNERS.get(engine)
            if runner is None:
                runner = _RUNNERS[engine] = _ThreadRunner(engine, self.memory)
            self._runner = runner
        self._closed = False

    def execute(self, conn: Connection, statement: Any, params: Any) -> Any:
        """A prebuilt statement (no expanding parameters) with `params`: straight on the
        driver cursor on the SQLite preset (`_fast`), `conn.execute` elsewhere and whenever
        the engine has event listeners (tracing, statement capture), which then see it."""
        if self.fast and not conn._has_events:
            engine = conn.engine
            if not engine._has_events:
                return _fast.execute(conn, statement, params)
            limit = _PACKET_LIMITS.get(engine)
            if limit is not None and _only_packet_check(engine):
                # Our own packet check is the one listener: run it here, then go fast.
                _check_packet(limit, statement, params)
                return _fast.execute(conn, statement, params)
        return conn.execute(statement, params)

    def lock_space(self) -> object:
        """What one set of process-local locks covers: the database file (the engine for
        `:memory:`) on SQLite, the server and database elsewhere."""
        if self.memory:
            return self.sync_engine
        url = self.engine.url
        if self.ops.name == "sqlite":
            return str(Path(url.database or "").resolve())
        return f"{url.get_backend_name()}://{url.host}:{url.port}/{url.database}"

    async def close(self) -> None:
        """Dispose an owned engine (idempotent); a borrowed one stays open."""
        if self.owned and not self._closed:
            self._closed = True
            await dispose_engine(self.engine)

    async def checkout(self) -> AsyncConnection:
        """A pooled async connection the caller closes (server locks); failing to get one is
        `StorageUnavailable`."""
        assert isinstance(self.engine, AsyncEngine)
        try:
            return await self.engine.connect()
        except PikkuStorageError:
            raise
        except (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError) as error:
            raise StorageUnavailable(
                f"cannot connect to the database: {type(error).__name__}"
            ) from error

    def _gate(self) -> asyncio.Lock | nullcontext[None]:
        """One shared async connection (`:memory:`) carries one transaction at a time."""
        if not self.memory or self.threaded:
            return nullcontext()
        key = self.sync_engine
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = asyncio.Lock()
        return gate

    # --- one hop per call -------------------------------------------------------------

    def _greenlet_transaction(self, body: Body[T], write: bool) -> T:
        with self.sync_engine.connect() as conn:
            self.ops.begin(conn, write=write)
            result = body(conn)
            try:
                conn.commit()
            except BaseException as error:
                error.pikku_at_commit = True  # type: ignore[attr-defined]
                raise
            return result

    async def _once(self, body: Body[T], write: bool) -> T:
        runner = self._runner
        if runner is not None:
            worker = runner.writer if write else runner.reader
            return await worker.call(_thread_transaction, body, write)
        async with self._gate():
            return await greenlet_spawn(self._greenlet_transaction, body, write)

    def _busy_early(self, started: float) -> bool:
        """An `SQLITE_BUSY` before the busy timeout has passed: a lock that did not wait."""
        return time.monotonic() - started < self.busy_timeout

    async def run(self, body: Body[T], *, write: bool) -> T:
        """Run `body(conn)` in one transaction, re-run after a deadlock, a serialization
        failure, an early `SQLITE_BUSY` or a stale pooled connection (`RETRY_POLICY`)."""
        started = time.monotonic()

        def retryable(error: BaseException) -> bool:
            if is_retryable(error):
                return True
            if is_sqlite_busy(error):
                return self._busy_early(started)
            return (
                isinstance(error, sa_exc.DBAPIError)
                and error.connection_invalidated
                and not getattr(error, "pikku_at_commit", False)
            )

        policy = SQLITE_BUSY_POLICY if self.ops.name == "sqlite" else RETRY_POLICY
        try:
            return await retry(lambda: self._once(body, write), retryable, policy)
        except PikkuStorageError:
            raise
        except Exception as error:
            if is_sqlite_busy(error):
                raise StorageUnavailable(
                    f"the database file stayed locked by another connection for the whole "
                    f"busy timeout ({self.busy_timeout:g} s)"
                ) from error
            if is_retryable(error):
                raise StorageUnavailable(
                    f"database kept failing with a deadlock or serialization failure after "
                    f"{RETRY_POLICY.attempts} attempts: {type(error).__name__}"
                ) from error
            if is_unavailable(error):
                raise StorageUnavailable(f"database unavailable: {type(error).__name__}") from error
            raise

    async def write(self, body: Body[T]) -> T:
        """`run(body, write=True)`."""
        return await self.run(body, write=True)

    async def read(self, body: Body[T]) -> T:
        """`run(body, write=False)`: one consistent snapshot where the dialect gives one."""
        return await self.run(body, write=False)

    async def connection(self, fn: Body[T]) -> T:
        """`fn(conn)` on a connection with no transaction of ours (migrations, inspection):
        the writer thread on SQLite, one greenlet elsewhere. On SQLite an early
        `SQLITE_BUSY` (two processes switching a new file to WAL at once gets one without
        waiting) re-runs `fn` until the busy timeout has passed; `fn` must be idempotent."""
        async with translate_errors():
            if self.ops.name != "sqlite":
                return await self._connection_once(fn)
            started = time.monotonic()
            return await retry(
                lambda: self._connection_once(fn),
                lambda error: is_sqlite_busy(error) and self._busy_early(started),
                SQLITE_BUSY_POLICY,
            )

    async def _connection_once(self, fn: Body[T]) -> T:
        runner = self._runner
        if runner is not None:
            return await runner.writer.call(_thread_connection, fn)
        async with self._gate():
            return await greenlet_spawn(self._greenlet_connection, fn)

    def _greenlet_connection(self, fn: Body[T]) -> T:
        with self.sync_engine.connect() as conn:
            return fn(conn)

    async def ensure_schema(self, now: datetime) -> None:
        """Create or migrate this namespace's tables once per engine
        (docs/operations.md#storage-layout, docs/concepts.md#lifecycle-and-namespaces)."""
        key = self.sync_engine
        done = _MIGRATED.setdefault(key, set())
        if (self.schema, self.table_prefix) in done:
            return
        await self.connection(lambda conn: migrate(self, conn, now))
        done.add((self.schema, self.table_prefix))
        if self.ops.name == "mysql" and key not in _PACKET_LIMITS:
            limit = await self.connection(_max_allowed_packet)
            if key not in _PACKET_LIMITS:
                _PACKET_LIMITS[key] = limit
                event.listen(key, "before_cursor_execute", _packet_check(limit))


_TRANSACTION_EVENTS: Final = (
    "after_cursor_execute",
    "after_execute",
    "before_execute",
    "begin",
    "commit",
    "rollback",
    "savepoint",
    "release_savepoint",
    "rollback_savepoint",
)


def _only_packet_check(engine: Engine) -> bool:
    """Whether the engine's only statement listener is the packet check we installed."""
    dispatch: Any = engine.dispatch
    if sum(1 for _ in dispatch.before_cursor_execute) != 1:
        return False
    return not any(any(True for _ in getattr(dispatch, name)) for name in _TRANSACTION_EVENTS)


def _check_packet(limit: int, statement: Any, params: Any) -> None:
    rows = [params] if isinstance(params, Mapping) else params
    _packet_check(limit)(None, None, "", rows, None, True)


def _max_allowed_packet(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())


PACKET_MARGIN: Final = 1024  # bytes of protocol framing and SQL around the parameters


def _size(value: object) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return 2 * len(value)  # escaped
    return 24


def _packet_check(limit: int) -> Callable[..., None]:
    """A `before_cursor_execute` hook refusing a statement the server would drop: MySQL closes
    the connection on a packet over `max_allowed_packet` (errors 1153/2006), which must not read
    as "unavailable" to a caller who would retry forever (issue 17 item 5)."""

    def check(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        rows = parameters if many else [parameters]
        for row in rows:
            values = row.values() if isinstance(row, Mapping) else (row or ())
            size = len(statement) + PACKET_MARGIN
            for value in values:
                size += _size(value)
            if size > limit:
                raise InvalidValue(
                    f"value too large for this MySQL server: the statement needs about "
                    f"{size:,} bytes, over its max_allowed_packet of {limit:,} bytes; raise it "
                    f"(SET GLOBAL max_allowed_packet = ..., or max_allowed_packet in the server "
                    f"configuration, up to 1 GiB) or store a smaller value"
                )

    return check


class SqlAlchemyService(Service):
    """What every SQLAlchemy service shares: its `Database`, `init()` and `close()`.

    `bind` is an async URL (`postgresql+psycopg://…`, `mysql+aiomysql://…`,
    `sqlite+aiosqlite:///…`), whose engine the service owns, or an `AsyncEngine` it borrows.
    `schema` (PostgreSQL, MySQL) and `table_prefix` name the namespace; `busy_timeout` (seconds,
    SQLite) and `engine_options` apply to an engine built from a URL. `init()` creates or
    migrates the namespace's tables (once per engine); `close()` disposes an owned engine and
    leaves a borrowed one open (see docs/concepts.md#lifecycle-and-namespaces).
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
        synchronous: str = DEFAULT_SYNCHRONOUS,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._attach(
            bind,
            schema=schema,
            table_prefix=table_prefix,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
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
        synchronous: str = DEFAULT_SYNCHRONOUS,
    ) -> None:
        """Build the service's `Database` (no I/O)."""
        self._db = Database(
            bind,
            schema=schema,
            table_prefix=table_prefix,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
            engine_options=engine_options,
        )

    @property
    def engine(self) -> Any:
        """The engine the service runs on (owned when built from a URL): an `AsyncEngine`, or
        the SQLite preset's sync `Engine`."""
        return self._db.engine

    @property
    def metadata(self) -> MetaData:
        """The namespace's tables, for Alembic's `target_metadata`."""
        return self._db.tables.metadata

    async def _init(self) -> None:
        await self._db.ensure_schema(self._now())

    async def _close(self) -> None:
        await self._db.close()
