"""The Redis backend (redis-py asyncio; also runs in-process on fakeredis with its Lua extra).

`open_storage("redis://…")` builds the eight services on one client that the `Storage` owns;
`storage_from_client(client)` builds them on a client the caller gives (fakeredis, Sentinel).
Standalone servers, Sentinel primaries, Valkey and Redis Cluster (`redis+cluster://` or a
`RedisCluster` client; keys placed in `cluster_buckets` hash-tag buckets), on core commands
and Lua only. See docs/concepts.md#lifecycle-and-namespaces, docs/operations.md#storage-layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from pikku_storage import _validate as v
from pikku_storage.backends import backend_for, backend_named
from pikku_storage.clock import Clock
from pikku_storage.errors import InvalidValue
from pikku_storage.interfaces.deployments import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TTL
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


def _seconds_or_none(name: str, value: object) -> None:
    if value is not None:
        v.positive_seconds(name, value)


def _non_negative_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidValue(f"{name} must be a number of seconds: {value!r}")
    if value < 0:
        raise InvalidValue(f"{name} must be >= 0: {value!r}")


def _positive_int(name: str, value: object) -> None:
    if v.non_negative_int(name, value) < 1:
        raise InvalidValue(f"{name} must be >= 1: {value!r}")


def _text_or_none(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidValue(f"{name} must be a str, got {type(value).__name__}")


def _protocol(name: str, value: object) -> None:
    if value not in (2, 3, "2", "3") or isinstance(value, bool):
        raise InvalidValue(f"{name} must be 2 or 3: {value!r}")


def _given(name: str, value: object) -> None:
    """An object redis-py takes as it is (a `Retry`, a credential provider, SSL settings)."""


_CHECKS: Final[Mapping[str, Callable[[str, object], object]]] = {
    "socket_timeout": _seconds_or_none,
    "socket_connect_timeout": _seconds_or_none,
    "timeout": _seconds_or_none,  # how long a call waits for a free pooled connection
    "health_check_interval": _non_negative_seconds,
    "max_connections": _positive_int,
    "socket_read_size": _positive_int,
    "db": v.non_negative_int,
    "port": v.non_negative_int,
    "protocol": _protocol,
    "retry_on_timeout": v.boolean,
    "socket_keepalive": v.boolean,
    "ssl_check_hostname": v.boolean,
    **{
        name: _text_or_none
        for name in (
            "client_name",
            "encoding",
            "encoding_errors",
            "host",
            "lib_name",
            "lib_version",
            "password",
            "path",
            "ssl_ca_certs",
            "ssl_ca_data",
            "ssl_ca_path",
            "ssl_certfile",
            "ssl_ciphers",
            "ssl_keyfile",
            "ssl_password",
            "username",
        )
    },
    **{
        name: _given
        for name in (
            "credential_provider",
            "driver_info",
            "retry",
            "retry_on_error",
            "socket_keepalive_options",
            "ssl_cert_reqs",
            "ssl_exclude_verify_flags",
            "ssl_include_verify_flags",
            "ssl_min_version",
        )
    },
}


def _check_client_options(options: Mapping[str, object]) -> None:
    """`InvalidValue` naming a client option redis-py does not take or a value of the wrong
    type, before the client exists (redis-py would raise `TypeError` at the first call)."""
    for name, value in options.items():
        check = _CHECKS.get(name)
        if check is None:
            raise InvalidValue(
                f"unknown option {name!r} for the redis backend; client options are "
                f"{', '.join(sorted(_CHECKS))}"
            )
        check(name, value)


def open_storage(
    url: str,
    *,
    key_prefix: str = "pikku",
    clock: Clock | None = None,
    lock_lease: float = 30.0,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
    prune_on_heartbeat: bool = True,
    cluster_buckets: int | None = None,
    wait_replicas: int | None = None,
    wait_timeout: int | None = None,
    **client_options: object,
) -> Storage:
    """Every service on one client made from `url` (`redis://` or `rediss://`); no I/O yet.

    `client_options` go to `redis.asyncio.Redis.from_url` (pool size, timeouts, TLS).
    `wait_replicas=N` (or `?wait_replicas=N` on the URL, with `wait_timeout` ms, default 1000)
    makes every write wait for N replicas (docs/operations.md#replica-acknowledged-writes). The
    `Storage` owns the client and closes it last. Raises: `InvalidValue` for an unknown
    option or a bad value, before any connection is made. See
    docs/concepts.md#lifecycle-and-namespaces.
    """
    _check_client_options(client_options)
    connection = RedisConnection(
        _check_url(url),
        cluster_buckets=cluster_buckets,
        wait_replicas=wait_replicas,
        wait_timeout=wait_timeout,
        **client_options,
    )
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
    client: Redis | RedisCluster,
    *,
    own_client: bool = False,
    key_prefix: str = "pikku",
    clock: Clock | None = None,
    lock_lease: float = 30.0,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
    prune_on_heartbeat: bool = True,
    cluster_buckets: int | None = None,
    wait_replicas: int | None = None,
    wait_timeout: int | None = None,
) -> Storage:
    """Every service on a `redis.asyncio` client the caller made (fakeredis, Sentinel, TLS).

    The client is borrowed (left open by `close()`) unless `own_client=True`. A
    synchronous client raises `InvalidValue`; a `RedisCluster` client selects the cluster
    layout (`cluster_buckets`, default 16). See docs/concepts.md#lifecycle-and-namespaces.
    """
    connection = RedisConnection(
        client,
        cluster_buckets=cluster_buckets,
        wait_replicas=wait_replicas,
        wait_timeout=wait_timeout,
    )
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
    connection = RedisConnection(_check_url(url))
    try:
        async with translate_errors():
            value = await connection.client.get(layout_key(v.namespace("key_prefix", key_prefix)))
    finally:
        await connection.aclose()
    return None if value is None else int(value)
