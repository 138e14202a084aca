"""The embedded default: the SQLAlchemy backend preset for one SQLite file.

`open_storage("sqlite:///path/to/file.db")` (or `"sqlite://:memory:"`) builds every service
on one SQLAlchemy sync engine on the stdlib `sqlite3` driver, with `foreign_keys = ON`, WAL, a
busy timeout and `synchronous = NORMAL` (`synchronous="full"` to fsync every commit). Each
call is one whole transaction run in a worker thread: writes on one writer thread with
`BEGIN IMMEDIATE` (the file's write lock is taken first, so other processes wait up to
`busy_timeout`), plain reads on two reader threads. The `Sqlite…` classes take a database
path. No SQL lives here: every statement is the SQLAlchemy backend's. Locks exclude within one
process; claims, conflicts and insert-if-absent hold across processes sharing the file
(see docs/index.md, docs/concepts.md#lifecycle-and-namespaces, docs/operations.md#storage-layout).

Durability: under WAL, `synchronous = NORMAL` survives any crash of the application; a power
cut or OS crash may lose the last commits (never corrupt the file). `synchronous="full"` makes
every commit durable at the price of one fsync per write.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from pikku_storage.clock import Clock
from pikku_storage.errors import InvalidValue
from pikku_storage.interfaces.deployments import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TTL
from pikku_storage.sqlalchemy import LATEST_VERSION
from pikku_storage.sqlalchemy import open_storage as _open_sqlalchemy
from pikku_storage.sqlalchemy import schema_version as _sqlalchemy_schema_version
from pikku_storage.sqlalchemy._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    THREAD_DRIVER,
    SqlAlchemyService,
    synchronous_mode,
)
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
    "SqliteAIRunStateService",
    "SqliteAIStorageService",
    "SqliteAgentRunService",
    "SqliteChannelStore",
    "SqliteDeploymentService",
    "SqliteEventHubStore",
    "SqliteWorkflowRunService",
    "SqliteWorkflowService",
    "open_storage",
    "schema_version",
    "sqlite_url",
]

MEMORY = ":memory:"


def sqlite_url(database: str | os.PathLike[str]) -> URL:
    """The aiosqlite URL of a file path, `":memory:"`, or a `sqlite://` URL.

    `sqlite:///relative.db`, `sqlite:////absolute.db`, `sqlite://:memory:`, `sqlite://` and
    `sqlite+aiosqlite:///…` are accepted. Raises: `InvalidValue` for another scheme.
    """
    text = os.fspath(database)
    if text in (MEMORY, "sqlite://", "sqlite://:memory:", "sqlite:///:memory:"):
        return URL.create("sqlite+aiosqlite")
    for scheme in ("sqlite+aiosqlite://", "sqlite://"):
        if text.startswith(scheme):
            path = text[len(scheme) :]
            if not path.startswith("/"):
                raise InvalidValue(f"expected sqlite:///path/to/file.db, got {text!r}")
            text = path[1:]
            break
    else:
        if "://" in text:
            raise InvalidValue(f"not an SQLite URL: {text!r}")
    if not text:
        raise InvalidValue("an SQLite database path must not be empty")
    return URL.create("sqlite+aiosqlite", database=text)


def open_storage(
    url: str | os.PathLike[str],
    *,
    table_prefix: str = "pikku_",
    clock: Clock | None = None,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
    prune_on_heartbeat: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    synchronous: str = DEFAULT_SYNCHRONOUS,
) -> Storage:
    """Every service on one SQLite file (or `:memory:`); the `Storage` owns the engine. No I/O.

    `synchronous`: `"normal"` (default; survives application crashes, a power cut may lose the
    last commits) or `"full"` (an fsync per commit). Raises: `InvalidValue` for a bad value.
    """
    return _open_sqlalchemy(
        _thread_url(url),
        table_prefix=table_prefix,
        clock=clock,
        heartbeat_interval=heartbeat_interval,
        heartbeat_ttl=heartbeat_ttl,
        prune_on_heartbeat=prune_on_heartbeat,
        busy_timeout=busy_timeout,
        synchronous=synchronous_mode(synchronous),
    )


def _thread_url(database: str | os.PathLike[str]) -> URL:
    """The preset's URL: the stdlib driver, run in worker threads."""
    return sqlite_url(database).set(drivername=THREAD_DRIVER)


class _SqlitePreset(SqlAlchemyService):
    """A SQLAlchemy service whose `database` is an SQLite path, `:memory:`, a `sqlite://` URL
    or an `AsyncEngine` (borrowed)."""

    def __init__(
        self,
        database: str | os.PathLike[str] | AsyncEngine,
        *,
        table_prefix: str = "pikku_",
        clock: Clock | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str = DEFAULT_SYNCHRONOUS,
    ) -> None:
        super().__init__(
            _bind(database),
            table_prefix=table_prefix,
            clock=clock,
            busy_timeout=busy_timeout,
            synchronous=synchronous_mode(synchronous),
        )


class SqliteWorkflowService(_SqlitePreset, SqlAlchemyWorkflowService):
    """Workflow state on an SQLite file; locks exclude within this process
    (docs/operations.md#storage-layout)."""


class SqliteWorkflowRunService(_SqlitePreset, SqlAlchemyWorkflowRunService):
    """Workflow console queries on an SQLite file (docs/services/workflow-runs.md)."""


class SqliteAIStorageService(_SqlitePreset, SqlAlchemyAIStorageService):
    """AI threads, messages and working memory on an SQLite file (docs/services/ai-storage.md)."""


class SqliteAIRunStateService(_SqlitePreset, SqlAlchemyAIRunStateService):
    """Agent runs and pending approvals on an SQLite file (docs/services/ai-run-state.md)."""


class SqliteAgentRunService(_SqlitePreset, SqlAlchemyAgentRunService):
    """AI console queries, deletion and retention on an SQLite file
    (docs/services/agent-runs.md)."""


class SqliteChannelStore(_SqlitePreset, SqlAlchemyChannelStore):
    """Channels and sessions on an SQLite file (docs/services/channels.md)."""


class SqliteEventHubStore(_SqlitePreset, SqlAlchemyEventHubStore):
    """Topic subscriptions on an SQLite file, the one its channel store uses
    (docs/services/eventhub.md)."""


class SqliteDeploymentService(SqlAlchemyDeploymentService):
    """Deployment registrations on an SQLite file (docs/services/deployments.md)."""

    def __init__(
        self,
        database: str | os.PathLike[str] | AsyncEngine,
        *,
        table_prefix: str = "pikku_",
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
        prune_on_heartbeat: bool = True,
        clock: Clock | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str = DEFAULT_SYNCHRONOUS,
    ) -> None:
        super().__init__(
            _bind(database),
            table_prefix=table_prefix,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            clock=clock,
            busy_timeout=busy_timeout,
            synchronous=synchronous_mode(synchronous),
        )


def _bind(database: object) -> URL | AsyncEngine:
    if isinstance(database, AsyncEngine):
        return database
    if isinstance(database, str | os.PathLike):
        return _thread_url(database)
    raise InvalidValue(f"database must be a path, a URL or an AsyncEngine: {database!r}")


async def schema_version(
    database: str | os.PathLike[str], *, table_prefix: str = "pikku_"
) -> int | None:
    """The schema version recorded in the SQLite file (path or `sqlite://` URL; compare with
    `LATEST_VERSION`), or `None` when nothing was migrated there. Opens the file read-only and
    never creates it."""
    return await _sqlalchemy_schema_version(_thread_url(database), table_prefix=table_prefix)
