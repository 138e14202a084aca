"""The SQLAlchemy backend: SQLAlchemy 2 Core (async) on PostgreSQL, MySQL/MariaDB and SQLite.

`open_storage(url)` builds the eight services on one engine the `Storage` owns;
`storage_from_engine(engine)` builds them on an engine the caller keeps. `make_tables()` returns
the namespace's `MetaData` for Alembic. Drivers: psycopg (PostgreSQL), aiomysql (MySQL,
MariaDB), aiosqlite (SQLite). See docs/concepts.md#lifecycle-and-namespaces,
docs/operations.md#storage-layout.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import URL, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from pikku_storage.clock import Clock
from pikku_storage.errors import InvalidValue
from pikku_storage.interfaces.deployments import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TTL
from pikku_storage.sqlalchemy._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    create_engine,
    dispose_engine,
)
from pikku_storage.sqlalchemy._migrations import LATEST as LATEST_VERSION
from pikku_storage.sqlalchemy._schema import make_tables
from pikku_storage.sqlalchemy._version import schema_version
from pikku_storage.sqlalchemy.ai import (
    SqlAlchemyAgentRunService,
    SqlAlchemyAIRunStateService,
    SqlAlchemyAIStorageService,
)
from pikku_storage.sqlalchemy.channels import SqlAlchemyChannelStore, SqlAlchemyEventHubStore
from pikku_storage.sqlalchemy.deployments import SqlAlchemyDeploymentService
from pikku_storage.sqlalchemy.workflows import (
    SqlAlchemyWorkflowRunService,
    SqlAlchemyWorkflowService,
)
from pikku_storage.storage import Storage

__all__ = [
    "LATEST_VERSION",
    "SqlAlchemyAIRunStateService",
    "SqlAlchemyAIStorageService",
    "SqlAlchemyAgentRunService",
    "SqlAlchemyChannelStore",
    "SqlAlchemyDeploymentService",
    "SqlAlchemyEventHubStore",
    "SqlAlchemyWorkflowRunService",
    "SqlAlchemyWorkflowService",
    "make_tables",
    "open_storage",
    "schema_version",
    "storage_from_engine",
]


def storage_from_engine(
    engine: AsyncEngine,
    *,
    schema: str | None = None,
    table_prefix: str = "pikku_",
    clock: Clock | None = None,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
    prune_on_heartbeat: bool = True,
) -> Storage:
    """The eight services on `engine`, which they borrow: closing the `Storage` leaves it open.

    No I/O; `init()` (or `async with`) creates or migrates the namespace's tables.
    """
    if not isinstance(engine, AsyncEngine):
        raise InvalidValue(f"engine must be an AsyncEngine, got {type(engine).__name__}")
    return _storage_on(
        engine,
        schema=schema,
        table_prefix=table_prefix,
        clock=clock,
        heartbeat_interval=heartbeat_interval,
        heartbeat_ttl=heartbeat_ttl,
        prune_on_heartbeat=prune_on_heartbeat,
    )


def _storage_on(
    engine: AsyncEngine | Engine,
    *,
    schema: str | None,
    table_prefix: str,
    clock: Clock | None,
    heartbeat_interval: float,
    heartbeat_ttl: float,
    prune_on_heartbeat: bool,
) -> Storage:
    common: dict[str, Any] = {"schema": schema, "table_prefix": table_prefix, "clock": clock}
    return Storage(
        workflows=SqlAlchemyWorkflowService(engine, **common),
        workflow_runs=SqlAlchemyWorkflowRunService(engine, **common),
        ai_storage=SqlAlchemyAIStorageService(engine, **common),
        ai_run_state=SqlAlchemyAIRunStateService(engine, **common),
        agent_runs=SqlAlchemyAgentRunService(engine, **common),
        channels=SqlAlchemyChannelStore(engine, **common),
        eventhub=SqlAlchemyEventHubStore(engine, **common),
        deployments=SqlAlchemyDeploymentService(
            engine,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            **common,
        ),
    )


def open_storage(
    url: str | URL,
    *,
    schema: str | None = None,
    table_prefix: str = "pikku_",
    clock: Clock | None = None,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
    prune_on_heartbeat: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    synchronous: str = DEFAULT_SYNCHRONOUS,
    engine_options: Mapping[str, Any] | None = None,
) -> Storage:
    """Every service on one engine built from an async URL; the `Storage` owns the engine.

    `postgresql+psycopg://…`, `mysql+aiomysql://…` (MySQL 8, MariaDB) or
    `sqlite+aiosqlite:///path` / `sqlite+aiosqlite://` (`:memory:`). `schema` (PostgreSQL,
    MySQL) and `table_prefix` name the namespace; `busy_timeout` (seconds, SQLite),
    `synchronous` (SQLite files: `"normal"` or `"full"`) and `engine_options` (keyword
    arguments of `create_async_engine`) shape the engine. No I/O.
    Raises: `InvalidValue` for a URL without an async driver, a bad name or a bad option,
    before any connection is made.
    """
    if engine_options is not None and (
        not isinstance(engine_options, Mapping)
        or not all(isinstance(key, str) for key in engine_options)
    ):
        raise InvalidValue(f"engine_options must be a mapping of str keys: {engine_options!r}")
    if schema is not None and not isinstance(schema, str):
        raise InvalidValue(f"schema must be a str or None, got {type(schema).__name__}")
    engine = create_engine(  # a bad engine option is InvalidValue there, naming engine_options
        url, busy_timeout=busy_timeout, synchronous=synchronous, engine_options=engine_options
    )
    sync_engine = engine if isinstance(engine, Engine) else engine.sync_engine
    try:
        storage = _storage_on(
            engine,
            schema=schema,
            table_prefix=table_prefix,
            clock=clock,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
        )
    except BaseException:
        sync_engine.dispose(close=False)  # nothing was connected yet
        raise
    storage.resources.append(functools.partial(dispose_engine, engine))
    return storage
