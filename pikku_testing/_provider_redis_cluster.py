"""Provider of the `redis-cluster` backend: a fresh key prefix per test on a Redis Cluster.

The cluster comes from `PIKKU_TEST_REDIS_CLUSTER_URL` (or `--pikku-redis-cluster-url`), a
`redis+cluster://host:port/0` URL of any node; without it the backend skips (no container is
started for it). Each test gets its own key prefix, as on `redis`, and teardown deletes that
prefix's keys on every primary (the backend's `drop_namespace` scans node by node, allowed in
teardown only). The `Storage` clients refuse `SCAN` and `KEYS` like the `redis` provider's, so
the contract proves no request path sends them on a cluster either (docs/contract.md).
"""

from __future__ import annotations

from pikku_testing._provider_redis import RedisProvider

__all__ = ["RedisClusterProvider"]


class RedisClusterProvider(RedisProvider):
    """The Redis backend on a Redis Cluster; a unique key prefix per test."""

    name = "redis-cluster"
    server = "redis-cluster"
