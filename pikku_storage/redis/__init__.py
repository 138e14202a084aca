"""The Redis backend (redis-py asyncio; also runs in-process on fakeredis with its Lua extra).

`open_storage("redis://…")` builds the eight services on one client that the `Storage` owns;
`storage_from_client(client)` builds them on a client the caller gives (fakeredis, Sentinel).
Standalone servers, Sentinel primaries and Valkey, on core commands and Lua only; a cluster
client is refused. Spec: 00 §5, 01 §5.3, 02 §5.4, 03 §6.3.
"""

from __future__ import annotations

from redis.asyncio import Redis

from pikku_storage import _validate as v
from pikku_storage.backends import backend_for, backend_named
from pikku_storage.clock import Clock
from pikku_storage.errors import InvalidValue
from pikku_storage.redis._connection import RedisConnection
from pikku_storage.redis._errors import translate_errors
from pikku_storage.redis._keys import LAYOUT_VERSION, layout_key
from pikku_storage.redis.ai import (
    RedisAgentRunService,
    RedisAIRunStateService,
    RedisAIStorageService,
)
from pikku_storage.redis.channels import RedisChannelStore, RedisEventHubStore
from pikku_storage.redis.deployments import RedisDeploymentService
from pikku_storage.redis.workflows import RedisWorkflowRunService, RedisWorkflowService
from pikku_storage.storage import Storage

__all__ = [
    "LATEST_VERSION",
    "RedisAIRunStateService",
    "RedisAIStorageService",
    "RedisAgentRunService",
    "RedisChannelStore",
    "RedisConnection",
    "RedisDeploymentService",
    "RedisEventHubStore",
    "RedisWorkflowRunService",
    "RedisWorkflowService",
    "open_storage",
    "schema_version",
    "storage_from_client",
]

LATEST_VERSION = LAYOUT_VERSION  # the key layout this code reads and writes


def _check_url(url: object) -> str:
    if not isinstance(url, str) or backend_for(url).name != "redis":
        known = ", ".join(f"{s}://" for s in backend_named("redis").schemes)
        raise InvalidValue(f"a Redis storage URL starts with one of {known}: {url!r}")
    return url


def open_storage(
    url: str,
    *,
    key_prefix: str = "pikku",
    clock: Clock | None = None,
    lock_lease: float = 30.0,
    heartbeat_interval: float = 10.0,
    heartbeat_ttl: float = 30.0,
    prune_on_heartbeat: bool = True,
    **client_options: object,
) -> Storage:
    """Every service on one client made from `url` (`redis://` or `rediss://`); no I/O yet.

    `client_options` go to `redis.asyncio.Redis.from_url` (pool size, timeouts, TLS). The
    `Storage` owns the client and closes it last. Spec: 00 §5.
    """
    connection = RedisConnection(_check_url(url), **client_options)
    storage = _build(
        connection,
        key_prefix=key_prefix,
        clock=clock,
        lock_lease=lock_lease,
        heartbeat_interval=heartbeat_interval,
        heartbeat_ttl=heartbeat_ttl,
        prune_on_heartbeat=prune_on_heartbeat,
    )
    storage.resources.append(connection.aclose)
    return storage


def storage_from_client(
    client: Redis,
    *,
    own_client: bool = False,
    key_prefix: str = "pikku",
    clock: Clock | None = None,
    lock_lease: float = 30.0,
    heartbeat_interval: float = 10.0,
    heartbeat_ttl: float = 30.0,
    prune_on_heartbeat: bool = True,
) -> Storage:
    """Every service on a `redis.asyncio` client the caller made (fakeredis, Sentinel, TLS).

    The client is borrowed (left open by `close()`) unless `own_client=True`. A cluster or
    synchronous client raises `InvalidValue`. Spec: 00 §5.
    """
    connection = RedisConnection(client)
    storage = _build(
        connection,
        key_prefix=key_prefix,
        clock=clock,
        lock_lease=lock_lease,
        heartbeat_interval=heartbeat_interval,
        heartbeat_ttl=heartbeat_ttl,
        prune_on_heartbeat=prune_on_heartbeat,
    )
    if own_client:
        storage.resources.append(client.aclose)
    return storage


def _build(
    connection: RedisConnection,
    *,
    key_prefix: str,
    clock: Clock | None,
    lock_lease: float,
    heartbeat_interval: float,
    heartbeat_ttl: float,
    prune_on_heartbeat: bool,
) -> Storage:
    return Storage(
        workflows=RedisWorkflowService(
            connection, key_prefix=key_prefix, clock=clock, lock_lease=lock_lease
        ),
        workflow_runs=RedisWorkflowRunService(connection, key_prefix=key_prefix, clock=clock),
        ai_storage=RedisAIStorageService(connection, key_prefix=key_prefix, clock=clock),
        ai_run_state=RedisAIRunStateService(connection, key_prefix=key_prefix, clock=clock),
        agent_runs=RedisAgentRunService(connection, key_prefix=key_prefix, clock=clock),
        channels=RedisChannelStore(connection, key_prefix=key_prefix, clock=clock),
        eventhub=RedisEventHubStore(connection, key_prefix=key_prefix, clock=clock),
        deployments=RedisDeploymentService(
            connection,
            key_prefix=key_prefix,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            clock=clock,
        ),
    )


async def schema_version(url: str, *, key_prefix: str = "pikku") -> int | None:
    """The key-layout version recorded under `key_prefix` at `url` (compare with
    `LATEST_VERSION`), or `None` when nothing was initialized there. Read-only: one GET.

    Raises: `InvalidValue` for a bad URL or prefix; `StorageUnavailable` when the server is down.
    """
    client = Redis.from_url(_check_url(url))
    try:
        async with translate_errors():
            value = await client.get(layout_key(v.namespace("key_prefix", key_prefix)))
    finally:
        await client.aclose()
    return None if value is None else int(value)
