"""The connection side every `Pg…` service shares: pool ownership, schema, migrations, errors.

A service built from a DSN owns its `AsyncConnectionPool` (opened in `init()`, closed in
`close()`); one given a pool borrows it: `init()` opens it if it was created with `open=False`,
`close()` never closes it. Queries always read tuple rows, whatever row factory a borrowed pool's
connections use. See docs/concepts.md#lifecycle-and-namespaces, docs/operations.md#storage-layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Final, LiteralString, TypeAlias, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow, tuple_row
from psycopg_pool import AsyncConnectionPool

from pikku_storage import _validate as v
from pikku_storage.errors import InvalidValue, StorageUnavailable
from pikku_storage.postgres._errors import is_connection_error, is_retryable, translate_errors
from pikku_storage.postgres._migrations import migrate

__all__ = [
    "Conn",
    "LockConnections",
    "PgDatabase",
    "PgPool",
    "Row",
    "check_lock_url",
    "compose",
    "execute",
    "fetch_all",
    "fetch_one",
    "make_pool",
    "one_trip",
    "through_pooler",
]

logger = logging.getLogger(__name__)

Conn: TypeAlias = "AsyncConnection[TupleRow]"
PgPool: TypeAlias = "AsyncConnectionPool[AsyncConnection[TupleRow]]"
Row: TypeAlias = TupleRow
Params: TypeAlias = "Mapping[str, object] | None"
Query: TypeAlias = "sql.Composed | sql.SQL"
T = TypeVar("T")

# deadlock / serialization failure retries (docs/operations.md#storage-layout)
MAX_ATTEMPTS: Final = 3
RECOVERY_TIMEOUT: Final = 5.0
DEFAULT_SCHEMA: Final = "pikku"
_CONNECT_OPTIONS: Final = frozenset({"prepare_threshold"})
_SET_UTC: Final = sql.SQL("SET TIME ZONE 'UTC'")
_BEGIN: Final = sql.SQL("BEGIN")
_COMMIT: Final = sql.SQL("COMMIT")
_OPEN: Final = frozenset({TransactionStatus.INTRANS, TransactionStatus.INERROR})

# psycopg's own connect() arguments, as opposed to libpq parameters: not for lock connections
_CLIENT_OPTIONS: Final = frozenset(
    {"autocommit", "prepare_threshold", "row_factory", "cursor_factory", "context"}
)
_BACKEND_PID: Final = sql.SQL("SELECT pg_backend_pid()")
_IDLE_LOCK_CONNECTIONS: Final = 2  # kept open between locks; more are closed on return

# Schemas known to be at the latest version, per pool: services sharing a pool migrate once.
_MIGRATED: Final[weakref.WeakKeyDictionary[PgPool, set[str]]] = weakref.WeakKeyDictionary()


async def _configure(conn: Conn) -> None:
    """Per-connection setup of an owned pool: sessions speak UTC
    (docs/operations.md#storage-layout)."""
    await conn.execute(_SET_UTC)


def make_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    max_idle: float = 600.0,
    max_lifetime: float = 3600.0,
    timeout: float = 30.0,
    check: bool = False,
    name: str | None = None,
    **connect: object,
) -> PgPool:
    """An unopened pool of autocommit UTC connections for `dsn`; no I/O.

    `connect` holds `prepare_threshold` (`None` for PgBouncer transaction mode) and libpq
    connection parameters (`application_name`, `sslmode`, …), checked here. `check=True` tests
    each connection before handing it out (one more round trip per call); without it a broken
    connection fails one call, which then sweeps the pool (see `PgDatabase.run`).
    Raises: `InvalidValue` for a bad option.
    """
    if not isinstance(dsn, str) or not dsn:
        raise InvalidValue("a PostgreSQL DSN must be a non-empty str")
    min_size = v.non_negative_int("min_size", min_size)
    max_size = v.non_negative_int("max_size", max_size)
    if max_size < max(min_size, 1):
        raise InvalidValue(f"max_size must be >= min_size and >= 1: {max_size}")
    kwargs: dict[str, object] = {"autocommit": True}
    params: dict[str, object] = {}
    for key, value in connect.items():
        (kwargs if key in _CONNECT_OPTIONS else params)[key] = value
    threshold = kwargs.get("prepare_threshold", 5)
    if threshold is not None:
        v.non_negative_int("prepare_threshold", threshold)
    try:
        make_conninfo(dsn, **params)  # type: ignore[arg-type]  # libpq validates the names
    except psycopg.ProgrammingError as exc:
        raise InvalidValue(f"bad PostgreSQL connection option: {exc}") from None
    kwargs.update(params)
    return AsyncConnectionPool(
        dsn,
        kwargs=kwargs,
        min_size=min_size,
        max_size=max_size,
        max_idle=v.positive_seconds("max_idle", max_idle),
        max_lifetime=v.positive_seconds("max_lifetime", max_lifetime),
        timeout=v.positive_seconds("timeout", timeout),
        check=AsyncConnectionPool.check_connection if v.boolean("check", check) else None,
        configure=_configure,
        open=False,
        name=name,
    )


def compose(template: sql.SQL, schema: str, **tables: str) -> sql.Composed:
    """Fill a template's `{table}` placeholders with schema-qualified identifiers (style §7)."""
    return template.format(**{key: sql.Identifier(schema, name) for key, name in tables.items()})


async def execute(conn: Conn, query: Query, params: Params = None) -> int:
    """Run a statement; its row count."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    return cur.rowcount


async def fetch_all(conn: Conn, query: Query, params: Params = None) -> list[Row]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    return await cur.fetchall()


async def fetch_one(conn: Conn, query: Query, params: Params = None) -> Row | None:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    return await cur.fetchone()


@contextlib.asynccontextmanager
async def one_trip(conn: Conn) -> AsyncIterator[None]:
    """One transaction of the statements the block executes, sent in one round trip.

    BEGIN, the block's statements and COMMIT are queued in pipeline mode and flushed with one
    Sync; the block must not read a result (read the cursors after it). psycopg's
    `pipeline()` + `transaction()` nest pipelines and sync at each level (about four round
    trips). A failed statement makes the server skip the rest, COMMIT included, and raises
    here after the transaction is rolled back; an exception raised by the block itself
    rolls back too, since COMMIT is queued only after the block.
    """
    try:
        async with conn.pipeline():
            if conn.autocommit:  # otherwise psycopg queues its own BEGIN before the first statement
                await conn.execute(_BEGIN)
            yield
            await conn.execute(_COMMIT)
    except BaseException:
        if not conn.closed and conn.info.transaction_status in _OPEN:
            with contextlib.suppress(psycopg.Error):
                await conn.rollback()
        raise


class PgDatabase:
    """One service's access to PostgreSQL: a pool (owned or borrowed) and a schema."""

    __slots__ = ("_owned", "_pool", "_recovery", "schema")

    def __init__(self, pool: str | PgPool, schema: str = DEFAULT_SCHEMA) -> None:
        self.schema: Final = v.namespace("schema", schema)
        if isinstance(pool, str):
            self._pool: PgPool = make_pool(pool, name=f"pikku-{self.schema}")
            self._owned = True
        elif isinstance(pool, AsyncConnectionPool):
            self._pool = pool
            self._owned = False
        else:
            raise InvalidValue(
                f"expected a DSN or an AsyncConnectionPool, got {type(pool).__name__}"
            )
        self._recovery: asyncio.Task[None] | None = None

    @property
    def pool(self) -> PgPool:
        return self._pool

    @property
    def owned(self) -> bool:
        return self._owned

    def compose(self, template: sql.SQL, **tables: LiteralString) -> sql.Composed:
        return compose(template, self.schema, **tables)

    async def open(self) -> None:
        """Open the pool if needed and migrate the schema; idempotent."""
        async with translate_errors():
            if self._pool.closed:
                logger.info("opening pool %s for schema %s", self._pool.name, self.schema)
                await self._probe()
            await self._pool.open()
            migrated = _MIGRATED.setdefault(self._pool, set())
            if self.schema in migrated:
                return
            async with self._pool.connection() as conn:
                await migrate(conn, self.schema)
            migrated.add(self.schema)

    async def _probe(self) -> None:
        """Connect once outside the pool, so that a wrong database, user or host fails at once
        with the server's own reason; a pool only logs it and times out after `timeout`."""
        conninfo, kwargs = self._pool.conninfo, self._pool.kwargs
        if not isinstance(conninfo, str) or not isinstance(kwargs, dict):
            return  # a pool given callables makes its own connections: nothing to probe with
        async with asyncio.timeout(self._pool.timeout):
            conn = await psycopg.AsyncConnection.connect(conninfo, **kwargs)
        await conn.close()

    async def close(self) -> None:
        """Close an owned pool (idempotent); a borrowed one stays open."""
        recovery, self._recovery = self._recovery, None
        if recovery is not None and not recovery.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(recovery), RECOVERY_TIMEOUT)
        if self._owned and not self._pool.closed:
            logger.info("closing pool %s of schema %s", self._pool.name, self.schema)
            await self._pool.close()

    async def run(self, body: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `body` on a pooled connection; connection failures raise `StorageUnavailable`.

        A deadlock or serialization failure runs the body again (at most 3 attempts), so a body
        must be one transaction or one statement. After a connection failure the idle pool is
        checked, so one broken call does not leave other broken connections behind.
        """
        logger.debug("%s on schema %s", getattr(body, "__qualname__", body), self.schema)
        attempt = 1
        while True:
            try:
                async with translate_errors(), self._pool.connection() as conn:
                    return await body(conn)
            except psycopg.Error as exc:
                if is_retryable(exc) and attempt < MAX_ATTEMPTS:
                    logger.warning("retrying after %s (attempt %d)", exc.sqlstate, attempt)
                    attempt += 1
                    continue
                raise
            except Exception as exc:
                if isinstance(exc.__cause__, psycopg.Error) and is_connection_error(exc.__cause__):
                    await self.recover()
                raise

    async def recover(self) -> None:
        """Check the idle connections of the pool once, replacing broken ones.

        The check runs in its own task (a cancelled `AsyncConnectionPool.check()` would lose
        connections) shared by concurrent callers, awaited for a bounded time.
        """
        if self._pool.closed:
            return
        task = self._recovery
        if task is None or task.done():
            task = self._recovery = asyncio.create_task(
                self._pool.check(), name="pikku-postgres-pool-check"
            )
        try:
            async with asyncio.timeout(RECOVERY_TIMEOUT):
                await asyncio.shield(task)
        except Exception:
            logger.warning("pool check after a connection failure did not finish", exc_info=True)


def check_lock_url(lock_url: object) -> str | None:
    """`lock_url` as given (`None`: locks connect like the pool); `InvalidValue` for a value
    that is not a PostgreSQL connection string."""
    if lock_url is None:
        return None
    if not isinstance(lock_url, str) or not lock_url:
        raise InvalidValue("lock_url must be a non-empty PostgreSQL URL or None")
    try:
        make_conninfo(lock_url)
    except psycopg.ProgrammingError as exc:
        raise InvalidValue(f"lock_url is not a PostgreSQL URL: {exc}") from None
    return lock_url


async def through_pooler(conn: Conn) -> bool:
    """Whether `conn` reaches PostgreSQL through a connection pooler such as PgBouncer.

    A server reports its backend's pid in the startup's key data; a pooler hands the client a
    key of its own, so the pid the session reports differs from the one the server runs.
    """
    row = await fetch_one(conn, _BACKEND_PID)
    return row is not None and row[0] != conn.info.backend_pid


class LockConnections:
    """Connections that hold session advisory locks, never drawn from the data pool.

    A held lock pins its connection for the body's whole duration; taken from the pool the body
    draws from, `max_size` concurrent holders would leave the bodies none (the pool cliff). Here
    each held lock has a connection of its own (to `lock_url`, else to the pool's server), opened
    on demand; up to two idle ones are kept. Without a connection string (a pool built from
    callables) they come from the pool as before.
    """

    __slots__ = ("_idle", "_pool", "_url")

    def __init__(self, pool: PgPool, lock_url: str | None) -> None:
        self._pool = pool
        self._url = lock_url
        self._idle: list[Conn] = []

    def _target(self) -> tuple[str, dict[str, object]] | None:
        """The conninfo and libpq parameters lock connections use; `None`: from the pool."""
        if self._url is not None:
            return self._url, {}
        conninfo, kwargs = self._pool.conninfo, self._pool.kwargs
        if not isinstance(conninfo, str) or not isinstance(kwargs, dict):
            return None
        return conninfo, {k: val for k, val in kwargs.items() if k not in _CLIENT_OPTIONS}

    async def get(self) -> Conn:
        """An autocommit connection for one lock."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        target = self._target()
        if target is None:
            return await self._pool.getconn()
        conninfo, params = target
        try:
            async with asyncio.timeout(self._pool.timeout):
                conn = await psycopg.AsyncConnection.connect(
                    make_conninfo(conninfo, **params),  # type: ignore[arg-type]  # libpq parameters of the pool, checked by make_pool
                    autocommit=True,
                    prepare_threshold=None,
                )
        except TimeoutError:
            raise StorageUnavailable(
                f"PostgreSQL unavailable: no lock connection within {self._pool.timeout} s"
            ) from None
        return conn

    async def put(self, conn: Conn, *, broken: bool = False) -> None:
        """Return `conn` (`broken`: its session state is unknown, so close it)."""
        if self._target() is None:
            if broken:
                await conn.close()
            await self._pool.putconn(conn)
            return
        if broken or conn.closed or len(self._idle) >= _IDLE_LOCK_CONNECTIONS:
            await conn.close()
        else:
            self._idle.append(conn)

    async def close(self) -> None:
        """Close the idle connections (idempotent)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()
