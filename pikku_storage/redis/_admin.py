"""Whole namespaces (key prefixes) on a Redis server: create, delete, sweep.

The backend registry (`pikku_storage.backends`) calls these for `pikku-storage check`, the
bench and the pytest providers. Deleting a namespace scans for its keys, which is allowed here
(teardown and administration), never on a request path. On a cluster it asks the node the
URL names for the primaries (`CLUSTER SLOTS`), then scans each primary on a plain connection,
all at once, deleting key by key (keys of one node may sit in different slots).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, cast
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError, TimeoutError

from pikku_storage import _validate as v
from pikku_storage.redis._connection import RedisConnection, seed_urls
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


async def _delete_on_node(client: Redis, pattern: str) -> int:
    """`delete_matching` on one cluster node: single-key UNLINKs, pipelined."""
    deleted = 0
    batch: list[bytes | str] = []
    async for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= _BATCH:
            deleted += await _unlink_each(client, batch)
            batch.clear()
    if batch:
        deleted += await _unlink_each(client, batch)
    return deleted


async def _unlink_each(client: Redis, keys: list[bytes | str]) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.unlink(key)
    return sum(cast("list[int]", await pipe.execute()))


async def _delete_on_cluster(url: str, pattern: str) -> int:
    """Delete the keys matching `pattern` on every primary of the cluster `url` names."""
    seeds = seed_urls(url)
    for seed_url in seeds:  # the first seed node that answers, as redis-py's client does
        seed = Redis.from_url(seed_url)
        try:
            execute = cast("Callable[..., Awaitable[object]]", seed.execute_command)  # untyped
            slots = cast("list[list[object]]", await execute("CLUSTER", "SLOTS"))
            break
        except (ConnectionError, TimeoutError):
            if seed_url == seeds[-1]:
                raise
        finally:
            await seed.aclose()
    primaries = {_address(entry[2]) for entry in slots}
    options = urlsplit(seed_url)
    clients = [
        Redis(host=host, port=port, username=options.username, password=options.password)
        for host, port in sorted(primaries)
    ]
    try:
        counts = await asyncio.gather(*(_delete_on_node(c, pattern) for c in clients))
    finally:
        for client in clients:
            await client.aclose()
    return sum(counts)


def _address(node: object) -> tuple[str, int]:
    """(host, port) of a `CLUSTER SLOTS` node entry `[host, port, id, …]`."""
    host, port = cast("list[object]", node)[:2]
    return (host.decode() if isinstance(host, bytes) else str(host)), int(cast(int, port))


async def _delete(url: str, pattern: str) -> int:
    connection = RedisConnection(url)
    if connection.buckets:
        return await _delete_on_cluster(url, pattern)
    try:
        return await delete_matching(connection.client, pattern)
    finally:
        await connection.aclose()


async def create_namespace(url: str, *, key_prefix: str = "pikku") -> None:
    """Record the key layout under `key_prefix` (what `init()` does)."""
    from pikku_storage.redis import open_storage

    async with open_storage(url, key_prefix=key_prefix):
        pass


async def drop_namespace(url: str, *, key_prefix: str = "pikku") -> None:
    """Delete every key of namespace `key_prefix`."""
    prefix = v.namespace("key_prefix", key_prefix)
    async with translate_errors():
        await _delete(url, f"{prefix}:*")


async def drop_matching(url: str, marker: str) -> list[str]:
    """Delete every key containing `marker`; a one-line summary (keys are not namespaces)."""
    async with translate_errors():
        deleted = await _delete(url, f"*{marker}*")
    return [f"{deleted} keys *{marker}*"] if deleted else []
