"""Whole namespaces (key prefixes) on a Redis server: create, delete, sweep.

The backend registry (`pikku_storage.backends`) calls these for `pikku-storage check`, the
bench and the pytest providers. Deleting a namespace scans for its keys, which is allowed here
(teardown and administration), never on a request path; on a cluster it scans every
primary in turn and deletes slot by slot.
"""

from __future__ import annotations

from typing import Final

from redis.asyncio import Redis

from pikku_storage import _validate as v
from pikku_storage.redis._connection import RedisConnection
from pikku_storage.redis._errors import translate_errors

__all__ = ["create_namespace", "delete_matching", "drop_matching", "drop_namespace"]

_BATCH: Final = 500


async def delete_matching(client: Redis, pattern: str) -> int:
    """Delete every key matching the glob `pattern`; how many (every primary of a cluster)."""
    deleted = 0
    batch: list[bytes | str] = []
    # a cluster client's scan_iter walks every primary; its unlink splits keys by slot
    async for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= _BATCH:
            deleted += await client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await client.unlink(*batch)
    return deleted


async def create_namespace(url: str, *, key_prefix: str = "pikku") -> None:
    """Record the key layout under `key_prefix` (what `init()` does)."""
    from pikku_storage.redis import open_storage

    async with open_storage(url, key_prefix=key_prefix):
        pass


async def drop_namespace(url: str, *, key_prefix: str = "pikku") -> None:
    """Delete every key of namespace `key_prefix`."""
    prefix = v.namespace("key_prefix", key_prefix)
    connection = RedisConnection(url)
    try:
        async with translate_errors():
            await delete_matching(connection.client, f"{prefix}:*")
    finally:
        await connection.aclose()


async def drop_matching(url: str, marker: str) -> list[str]:
    """Delete every key containing `marker`; a one-line summary (keys are not namespaces)."""
    connection = RedisConnection(url)
    try:
        async with translate_errors():
            deleted = await delete_matching(connection.client, f"*{marker}*")
    finally:
        await connection.aclose()
    return [f"{deleted} keys *{marker}*"] if deleted else []
