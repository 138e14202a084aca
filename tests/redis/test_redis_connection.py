"""Building Redis services: URLs and clients, ownership, namespaces, refused clients, init.

Spec: 00 §5, 01 D17 and §6 item 60, 02 D13, 03 D11.
"""

from __future__ import annotations

import socket

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

import pikku_storage
from pikku_storage import InvalidValue, ManualClock, StorageUnavailable
from pikku_storage.redis import (
    RedisChannelStore,
    RedisDeploymentService,
    RedisWorkflowService,
    open_storage,
    storage_from_client,
)

PREFIX = "pikku_connection_test"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_cluster_client_is_taken_with_a_valid_bucket_count() -> None:
    """A `RedisCluster` client selects the cluster layout (no I/O until `init()`); the bucket
    count is an int from 1 to 1024, and only a cluster takes one."""
    cluster = RedisCluster(host="127.0.0.1", port=_closed_port())
    storage = storage_from_client(cluster)
    assert isinstance(storage.workflows, RedisWorkflowService)
    RedisWorkflowService(cluster, cluster_buckets=4)
    for bad in (0, -1, 1025, True, 2.0, "8"):
        with pytest.raises(InvalidValue, match="cluster_buckets"):
            storage_from_client(cluster, cluster_buckets=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="cluster_buckets"):
        open_storage("redis+cluster://127.0.0.1:7000/0?cluster_buckets=x")
    with pytest.raises(InvalidValue, match="cluster_buckets"):
        open_storage("redis://127.0.0.1:6379/0", cluster_buckets=4)


def test_a_synchronous_client_or_another_object_is_refused() -> None:
    with pytest.raises(InvalidValue, match="synchronous"):
        storage_from_client(redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(InvalidValue):
        RedisChannelStore(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["", "a:b", "1abc", "a-b", "a b", "é", "x" * 49, None])
def test_a_bad_key_prefix_is_refused(prefix: object) -> None:
    """00 §5: a namespace name is a plain identifier."""
    with pytest.raises(InvalidValue):
        open_storage("redis://127.0.0.1:6379/0", key_prefix=prefix)  # type: ignore[arg-type]


@pytest.mark.parametrize("lease", [0, -1, float("nan"), float("inf"), True])
def test_a_bad_lock_lease_is_refused(lease: object) -> None:
    with pytest.raises(InvalidValue):
        open_storage("redis://127.0.0.1:6379/0", lock_lease=lease)  # type: ignore[arg-type]


def test_bad_deployment_options_are_refused() -> None:
    with pytest.raises(InvalidValue):
        open_storage("redis://127.0.0.1:6379/0", heartbeat_interval=5, heartbeat_ttl=5)


def test_open_storage_routes_redis_urls_and_refuses_others() -> None:
    """00 §5: `redis://` and `rediss://` reach this backend through the top-level opener."""
    for url in ("redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6380/1"):
        storage = pikku_storage.open_storage(url, key_prefix="p")
        assert type(storage.workflows).__name__ == "RedisWorkflowService"
    with pytest.raises(InvalidValue):
        open_storage("postgresql://localhost/db")


async def test_constructors_do_no_io_and_init_reports_an_unreachable_server() -> None:
    """00 §5: building services touches nothing; `init()` raises `StorageUnavailable`, whose
    message names the address and the reason (issue 13 item 7)."""
    port = _closed_port()
    storage = open_storage(f"redis://127.0.0.1:{port}/0", clock=ManualClock())
    with pytest.raises(StorageUnavailable, match=rf"ConnectionError: .*127\.0\.0\.1:{port}"):
        await storage.init()
    with pytest.raises(StorageUnavailable):
        await storage.workflows.create_run("flow", None)
    await storage.close()


def test_services_can_be_built_without_an_event_loop() -> None:
    """Style §15: no loop-bound object is made before first use."""
    storage = open_storage("redis://127.0.0.1:6379/0")
    assert storage.resources
    RedisDeploymentService("redis://127.0.0.1:6379/0", heartbeat_interval=1, heartbeat_ttl=2)


async def test_close_leaves_a_borrowed_client_open_and_closes_an_owned_one(
    pikku_redis_url: str,
) -> None:
    """01 §6 item 60: `close()` leaves a borrowed client open; a service built from a URL
    closes the client it made."""
    borrowed = redis.asyncio.Redis.from_url(pikku_redis_url)
    try:
        async with storage_from_client(borrowed, key_prefix=PREFIX):
            pass
        assert await borrowed.ping()
        async with RedisWorkflowService(borrowed, key_prefix=PREFIX):
            pass
        assert await borrowed.ping()
        owner = RedisWorkflowService(pikku_redis_url, key_prefix=PREFIX)
        async with owner:
            made = owner._redis
            assert await made.ping()
        assert owner._conn._client is None  # closed and dropped; a later use makes another
    finally:
        await borrowed.delete(f"{PREFIX}:layout")
        await borrowed.aclose()
