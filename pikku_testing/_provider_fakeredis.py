"""Provider of the `fakeredis` backend: the Redis backend in-process, one `FakeServer` per test.

Needs the `fakeredis` extra (fakeredis with its Lua runtime); the `redis` backend on a real
server does not. Every client refuses `SCAN` and `KEYS`, as on the real server
(docs/operations.md#storage-layout item 57).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import fakeredis
from fakeredis import aioredis
from redis.asyncio import BlockingConnectionPool

from pikku_storage import Clock, Storage
from pikku_storage.redis import storage_from_client
from pikku_testing._provider_redis import forbid_scans, key_prefix
from pikku_testing.contract._capabilities import Capability
from pikku_testing.providers import BackendProvider, Namespace, NamespaceRequest

__all__ = ["FakeRedisProvider"]


class FakeRedisProvider(BackendProvider):
    """The Redis backend in-process on fakeredis: one `FakeServer` per test namespace."""

    name = "fakeredis"
    server = None
    capabilities = frozenset({Capability.PERSISTENT})

    @asynccontextmanager
    async def namespace(self, request: NamespaceRequest) -> AsyncIterator[Namespace]:
        yield Namespace(
            provider=self,
            state={"server": fakeredis.FakeServer(), "key_prefix": key_prefix(request)},
        )

    def make_storage(self, namespace: Namespace, clock: Clock, **options: object) -> Storage:
        server, prefix = namespace.state["server"], namespace.state["key_prefix"]
        assert isinstance(server, fakeredis.FakeServer)
        assert isinstance(prefix, str)
        extra: dict[str, Any] = dict(options)  # checked by storage_from_client
        storage = storage_from_client(
            # a blocking pool, as `open_storage` builds: many concurrent calls wait, not fail
            aioredis.FakeRedis(server=server, connection_pool_class=BlockingConnectionPool),
            own_client=True,
            key_prefix=prefix,
            clock=clock,
            **extra,
        )
        return forbid_scans(storage)
