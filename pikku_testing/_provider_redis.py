"""Provider of the `redis` backend: a fresh key prefix per test on a real server.

`redis` runs on the server the plugin found; each test gets a key prefix naming the xdist
worker and the test's label, and teardown deletes that prefix's keys only (the backend's
`drop_namespace`, with `SCAN`, which is allowed in test teardown, never on a request path).
It needs only the `redis` extra: fakeredis is the `fakeredis` backend's
(`_provider_fakeredis`). Nothing bound to an event loop outlives the test that made it
(docs/contract.md).

Every client these providers give a `Storage` refuses `SCAN` and `KEYS` with an
`AssertionError`, so the whole contract and differential suites prove that no request path
sends them (docs/operations.md#storage-layout item 57); only the teardown's own client scans.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

from redis.asyncio import Redis

from pikku_storage import Clock, Storage
from pikku_storage.redis import open_storage
from pikku_storage.redis._admin import delete_matching, drop_namespace
from pikku_storage.redis._connection import RedisBase
from pikku_testing.contract._capabilities import Capability
from pikku_testing.providers import BackendProvider, Namespace, NamespaceRequest

__all__ = ["RedisProvider", "delete_prefix", "forbid_scans", "key_prefix"]

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_]")
_MAX_PREFIX: Final = 48
_FORBIDDEN: Final = frozenset({"SCAN", "KEYS"})


def key_prefix(request: NamespaceRequest) -> str:
    """A valid, unique key prefix naming the worker and the test's label."""
    prefix = _UNSAFE.sub("_", f"pikku_t_{request.worker}_{request.label}")
    if len(prefix) > _MAX_PREFIX:
        digest = hashlib.sha256(prefix.encode()).hexdigest()[:16]
        prefix = f"{prefix[: _MAX_PREFIX - 17]}_{digest}"
    return prefix


async def delete_prefix(client: Redis, prefix: str) -> int:
    """Delete every key of namespace `prefix` (test teardown only: it scans)."""
    return await delete_matching(client, f"{prefix}:*")


def forbid_scans(storage: Storage) -> Storage:
    """Make the client shared by `storage`'s services refuse `SCAN` and `KEYS`
    (docs/operations.md#storage-layout)."""
    service = storage.workflows
    assert isinstance(service, RedisBase)
    client = service._redis  # white-box: the backend's shared client, made here (no I/O)
    original: Callable[..., Awaitable[Any]] = client.execute_command

    async def guarded(*args: Any, **options: Any) -> Any:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if name.upper() in _FORBIDDEN:
            raise AssertionError(f"the Redis backend sent {name.upper()} on a request path")
        return await original(*args, **options)

    client.execute_command = guarded  # type: ignore[method-assign]  # the guard wraps it
    return storage


class RedisProvider(BackendProvider):
    """The Redis backend on a real server; a unique key prefix per test."""

    name = "redis"
    server = "redis"
    capabilities = frozenset(
        {Capability.CROSS_PROCESS, Capability.CROSS_PROCESS_LOCKS, Capability.PERSISTENT}
    )

    @asynccontextmanager
    async def namespace(self, request: NamespaceRequest) -> AsyncIterator[Namespace]:
        assert request.server_url is not None
        prefix = key_prefix(request)
        namespace = Namespace(
            provider=self,
            open_args=(request.server_url, {"key_prefix": prefix}),
            state={"url": request.server_url, "key_prefix": prefix},
        )
        try:
            yield namespace
        finally:
            await drop_namespace(request.server_url, key_prefix=prefix)

    def make_storage(self, namespace: Namespace, clock: Clock, **options: object) -> Storage:
        url, prefix = namespace.state["url"], namespace.state["key_prefix"]
        assert isinstance(url, str)
        assert isinstance(prefix, str)
        extra: dict[str, Any] = dict(options)  # checked by the backend's open_storage
        return forbid_scans(open_storage(url, key_prefix=prefix, clock=clock, **extra))
