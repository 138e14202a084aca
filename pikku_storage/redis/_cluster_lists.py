"""Lists over the hash-tag buckets of a cluster namespace, merged within the list's limit.

On a cluster every namespace index exists once per bucket (docs/operations.md#storage-layout).
A list reads each bucket's window of `offset + limit` in one pipeline (redis-py groups it by
node and sends each node its part at once), merges the windows in the list's order, keeps the
page `[offset, offset + limit)` and reads only those records, in a second pipeline: two round
trips per node, whatever the bucket count, and the same order and pages as one index would
give. Script calls go into such pipelines too (`Scripts.many`): one per bucket.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Final, TypeVar, cast

from redis.asyncio import Redis

from pikku_storage.records import WorkflowRun
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._keys import WorkflowKeys, run_member_id
from pikku_storage.redis._scripts import Scripts

__all__ = ["first", "list_runs", "top_members", "union_sorted"]

T = TypeVar("T")
K = TypeVar("K")


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


_ENTRY: Final = 15  # score, member, present flag, 12 record fields (`wf_list_window`)


async def list_runs(
    client: Redis,
    scripts: Scripts,
    keys: WorkflowKeys,
    index: Callable[[int], str],
    limit: int,
    offset: int,
) -> list[WorkflowRun]:
    """`list_runs` over every bucket's `index(b)`: newest first, ties by sequence.

    One script per bucket, all in one pipeline, returns the bucket's first `per` members (its
    share of the window plus a margin of 3, not the whole window) and, for a first page, their
    records. The merge is exact: a bucket that may hold more members than it returned and
    whose last one still ranks inside the window is read again with twice as many (until it
    is exhausted or covers the window); the margin makes that a minority of lists. Later pages
    read the chosen records in a second pipeline instead of every bucket's share. (Measured:
    records of all shares in one round beat members then records in two; a margin of 3 beat
    twice the share.)
    """
    window = offset + limit
    records = offset <= limit
    buckets = keys.all_buckets()
    per = min(window, -(-window // len(buckets)) + 3)
    entries: dict[int, list[tuple[int, str, list[str]]]] = {}
    done: set[int] = set()  # buckets read to their end or to the whole window
    pending = {b: per for b in buckets}
    while pending:
        replies = await scripts.many(
            [
                ("wf_list_window", [index(b)], [n, "1" if records else "0", *keys.run_prefix(b)])
                for b, n in pending.items()
            ]
        )
        for (b, n), reply in zip(pending.items(), replies, strict=True):
            entries[b] = _window_entries(reply, records)
            if len(entries[b]) < n or n >= window:
                done.add(b)
        merged = list(islice(_merge(entries), window))
        threshold = merged[-1][:2] if len(merged) >= window else None
        pending = {
            b: min(window, 2 * len(found))
            for b, found in entries.items()
            if b not in done and (threshold is None or found[-1][:2] >= threshold)
        }
    page = merged[offset:window]
    if records:
        items = [
            item
            for score, member, fields in page
            if fields[0]
            for item in (run_member_id(member), *fields[1:])
        ]
        return rows.workflow_runs("\0".join(items))
    by_bucket: dict[int, list[str]] = {}
    for _, member, _ in page:
        run_id = run_member_id(member)
        by_bucket.setdefault(keys.bucket(run_id), []).append(run_id)
    replies = await scripts.many(
        [
            ("wf_runs_by_id", [keys.runs(b)], [*keys.run_prefix(b), *ids])
            for b, ids in by_bucket.items()
        ]
    )
    found = {run.id: run for reply in replies for run in rows.workflow_runs(reply)}
    # a run deleted between the two reads is left out, as the one-index script does
    return [found[i] for i in (run_member_id(m) for _, m, _ in page) if i in found]


def _window_entries(reply: object, records: bool) -> list[tuple[int, str, list[str]]]:
    """(score, member, [present, 12 fields] or []) per member of a `wf_list_window` reply."""
    joined = rows.text(reply)
    if not joined:
        return []
    items = joined.split("\0")
    width = _ENTRY if records else 2
    return [
        (int(items[i]), items[i + 1], items[i + 2 : i + width]) for i in range(0, len(items), width)
    ]


def _merge(
    entries: dict[int, list[tuple[int, str, list[str]]]],
) -> Iterator[tuple[int, str, list[str]]]:
    """The buckets' windows merged newest first: (score, member) descending, as one index."""
    return heapq.merge(*entries.values(), key=lambda e: (e[0], e[1]), reverse=True)


async def union_sorted(client: Redis, sets: list[str]) -> list[str]:
    """The members of every sorted set in `sets`, without repeats, in code point order."""
    pipe = client.pipeline()
    for name in sets:
        pipe.zrange(name, 0, -1)
    replies = cast("list[list[bytes | str]]", await pipe.execute())
    return sorted({rows.text(member) for reply in replies for member in reply})
