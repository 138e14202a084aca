"""The PostgreSQL backend (psycopg 3, `psycopg_pool.AsyncConnectionPool`).

Each `Pg…` service takes a DSN (it then owns a pool of its own) or an `AsyncConnectionPool`
(borrowed: opened by `init()` if needed, never closed), a `schema` (default `pikku`) and a
`clock`. `open_storage("postgresql://…")` builds the eight services on one shared pool that
the returned `Storage` owns. See docs/concepts.md#lifecycle-and-namespaces,
docs/operations.md#storage-layout.
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pikku_storage import _validate as v
from pikku_storage.clock import Clock
from pikku_storage.errors import InvalidValue
from pikku_storage.interfaces.deployments import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TTL
from pikku_storage.postgres._connection import DEFAULT_SCHEMA, PgPool, make_pool
from pikku_storage.postgres._errors import translate_errors
from pikku_storage.postgres._migrations import LATEST_VERSION, stored_version
from pikku_storage.postgres.ai import PgAgentRunService, PgAIRunStateService, PgAIStorageService
from pikku_storage.postgres.channels import PgChannelStore, PgEventHubStore
from pikku_storage.postgres.deployments import PgDeploymentService
from pikku_storage.postgres.workflows import PgWorkflowRunService, PgWorkflowService
from pikku_storage.storage import Storage

__all__ = [
    "LATEST_VERSION",
    "PgAIRunStateService",
    "PgAIStorageService",
    "PgAgentRunService",
    "PgChannelStore",
    "PgDeploymentService",
    "PgEventHubStore",
    "PgPool",
    "PgWorkflowRunService",
    "PgWorkflowService",
    "make_pool",
    "open_storage",
    "schema_version",
    "storage_from_pool",
]


# libpq parameters whose value is an integer (`port` may list one per host); libpq itself
# reads them only when it connects, so a bad value would fail every connection attempt.
_INTEGER_PARAMETERS: Final = frozenset(
    {
        "connect_timeout",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "port",
        "tcp_user_timeout",
    }
)


def _check_connect_options(url: object, connect: dict[str, object]) -> None:
    """`InvalidValue` naming a connection option (given or in the URL) of the wrong type."""
    if not isinstance(url, str) or not url:
        raise InvalidValue("a PostgreSQL URL must be a non-empty str")
    try:
        in_url: dict[str, object] = dict(conninfo_to_dict(url))
    except psycopg.ProgrammingError as exc:
        raise InvalidValue(f"not a PostgreSQL URL: {exc}") from None
    for name, value in {**in_url, **connect}.items():
        if name == "prepare_threshold" or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidValue(f"{name} must be a str or an int, got {type(value).__name__}")
        if name in _INTEGER_PARAMETERS:
            items = str(value).split(",") if name == "port" else [str(value)]
            if not all(item.strip().isdigit() for item in items if item.strip() or name != "port"):
                raise InvalidValue(f"{name} must be an integer: {value!r}")


def open_storage(
    url: str,
    *,
    schema: str = DEFAULT_SCHEMA,
    clock: Clock | None = None,
    min_size: int = 1,
    max_size: int = 10,
    max_idle: float = 600.0,
    max_lifetime: float = 3600.0,
    timeout: float = 30.0,
    check: bool = False,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
    prune_on_heartbeat: bool = True,
    lock_url: str | None = None,
    **connect: object,
) -> Storage:
    """The eight services on one new pool for `url`, owned by the returned `Storage`; no I/O.

    Pool options go to `AsyncConnectionPool` (`timeout` is how long a call waits for a
    connection before `StorageUnavailable`; `check=True` tests connections before use); the
    remaining keywords are connection options: `prepare_threshold=None` for PgBouncer in
    transaction mode, or libpq parameters such as `application_name`. Each held workflow lock
    has a connection of its own outside the pool; `lock_url` is where those connect (needed
    behind PgBouncer: a direct URL of the server; `init()` refuses locks through a pooler).
    Raises: `InvalidValue` for a bad option or schema name, before any connection is made.
    """
    _check_connect_options(url, connect)
    pool = make_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        max_idle=max_idle,
        max_lifetime=max_lifetime,
        timeout=timeout,
        check=check,
        name=f"pikku-{schema}" if isinstance(schema, str) else None,
        **connect,
    )
    storage = storage_from_pool(
        pool,
        schema=schema,
        clock=clock,
        heartbeat_interval=heartbeat_interval,
        heartbeat_ttl=heartbeat_ttl,
        prune_on_heartbeat=prune_on_heartbeat,
        lock_url=lock_url,
    )
    storage.resources.append(pool.close)
    return storage


def storage_from_pool(
    pool: PgPool,
    *,
    schema: str = DEFAULT_SCHEMA,
    clock: Clock | None = None,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
    prune_on_heartbeat: bool = True,
    lock_url: str | None = None,
) -> Storage:
    """The eight services on a pool you own: they borrow it, so closing them leaves it open.

    Use it to share one pool between pikku-storage and the rest of an application;
    `lock_url` as for `open_storage`.
    """
    return Storage(
        workflows=PgWorkflowService(pool, schema=schema, clock=clock, lock_url=lock_url),
        workflow_runs=PgWorkflowRunService(pool, schema=schema, clock=clock),
        ai_storage=PgAIStorageService(pool, schema=schema, clock=clock),
        ai_run_state=PgAIRunStateService(pool, schema=schema, clock=clock),
        agent_runs=PgAgentRunService(pool, schema=schema, clock=clock),
        channels=PgChannelStore(pool, schema=schema, clock=clock),
        eventhub=PgEventHubStore(pool, schema=schema, clock=clock),
        deployments=PgDeploymentService(
            pool,
            schema=schema,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            clock=clock,
        ),
    )


async def schema_version(url: str, *, schema: str = DEFAULT_SCHEMA) -> int | None:
    """The schema version recorded in `schema` at `url` (compare with `LATEST_VERSION`), or
    `None` when nothing was migrated there. Read-only: no lock, no DDL, so a deploy check can
    run it against a live database.

    Raises: `InvalidValue` for a bad schema name; `StorageUnavailable` when the server is down.
    """
    v.namespace("schema", schema)
    async with (
        translate_errors(),
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
    ):
        return await stored_version(conn, schema) or None
