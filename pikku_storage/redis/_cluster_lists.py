"""Lists over the hash-tag buckets of a cluster namespace, merged within the list's limit.

On a cluster every namespace index exists once per bucket (docs/operations.md#storage-layout).
A list reads each bucket's window of `offset + limit` in one pipeline (redis-py groups it by
node and sends each node its part at once), merges the windows in the list's order, keeps the
page `[offset, offset + limit)` and reads only those records, in a second pipeline: two round
trips per node, whatever the bucket count, and the same order and pages as one index would
give. Scripts (the sweepers) cannot be pipelined on a cluster client; they run concurrently.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Iterable
from itertools import islice
from typing import TypeVar, cast

from redis.asyncio import Redis

from pikku_storage.records import WorkflowRun
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._keys import WorkflowKeys, run_member_id

__all__ = ["first", "gather", "list_runs", "top_members", "union_sorted"]

T = TypeVar("T")
K = TypeVar("K")


async def gather(calls: Iterable[Awaitable[T]]) -> list[T]:
    """The replies of `calls`, run concurrently, in order."""
    return list(await asyncio.gather(*calls))


def first(lists: Iterable[list[T]], key: Callable[[T], object], limit: int) -> list[T]:
    """The first `limit` items of lists each sorted ascending by `key`, merged."""
    merged = heapq.merge(*lists, key=key)  # type: ignore[arg-type]  # keys are comparable
    return list(islice(merged, limit))


async def top_members(
    client: Redis, indexes: list[str], offset: int, limit: int | None
) -> list[tuple[float, str]]:
    """The members `[offset, offset + limit)` (`None`: all from `offset`) of the union of
    sorted sets `indexes`, in descending (score, member) order: what one `ZRANGE … REV` of
    their union would give."""
    window = None if limit is None else offset + limit
    pipe = client.pipeline()
    for index in indexes:
        pipe.zrange(index, 0, -1 if window is None else window - 1, desc=True, withscores=True)
    replies = cast("list[list[tuple[bytes | str, float]]]", await pipe.execute())
    windows = [[(score, rows.text(member)) for member, score in reply] for reply in replies]
    return list(islice(heapq.merge(*windows, reverse=True), offset, window))


async def list_runs(
    client: Redis, keys: WorkflowKeys, index: Callable[[int], str], limit: int, offset: int
) -> list[WorkflowRun]:
    """`list_runs` over every bucket's `index(b)`: newest first, ties by sequence."""
    chosen = await top_members(client, [index(b) for b in keys.all_buckets()], offset, limit)
    if not chosen:
        return []
    ids = [run_member_id(member) for _, member in chosen]
    pipe = client.pipeline()
    for run_id in ids:
        pipe.hmget(keys.run(run_id), rows.RUN_FIELDS)
    found = cast("list[list[object]]", await pipe.execute())
    # a run deleted between the two reads is left out, as the one-index script does
    return [
        rows.workflow_run(run_id, fields)
        for run_id, fields in zip(ids, found, strict=True)
        if fields[0] is not None
    ]


async def union_sorted(client: Redis, sets: list[str]) -> list[str]:
    """The members of every sorted set in `sets`, without repeats, in code point order."""
    pipe = client.pipeline()
    for name in sets:
        pipe.zrange(name, 0, -1)
    replies = cast("list[list[bytes | str]]", await pipe.execute())
    return sorted({rows.text(member) for reply in replies for member in reply})
