"""Layout migrations of a Redis namespace, run by `init()` (00 §5, 05 D14).

Layout 1 -> 2 (spec 05): the `resources` zset is filled from the threads index, and every
running run (the running-status index) gets its markers re-derived from its steps, with the
idle and undispatched zsets filled, in one pass over those two indexes (no `SCAN`). Each batch
is one idempotent script, so concurrent `init()` calls agree; the recorded version moves to 2
only after the whole pass.
"""

from __future__ import annotations

import logging
from typing import Final

from redis.asyncio import Redis

from pikku_storage.records import WorkflowStatus
from pikku_storage.redis._keys import AIKeys, WorkflowKeys, run_member_id, thread_member_id
from pikku_storage.redis._rows import text
from pikku_storage.redis._scripts import Scripts

__all__ = ["migrate_1_to_2"]

logger = logging.getLogger(__name__)

_BATCH: Final = 500


async def migrate_1_to_2(client: Redis, scripts: Scripts, prefix: str) -> None:
    """Fill the layout-2 indexes and markers of namespace `prefix` from its layout-1 data."""
    ai, wf = AIKeys(prefix), WorkflowKeys(prefix)
    threads = runs = 0
    start = 0
    while True:
        members = await client.zrange(ai.threads(), start, start + _BATCH - 1)
        if not members:
            break
        ids = [thread_member_id(text(m)) for m in members]
        await scripts("layout_migrate_threads", [ai.resources(), *(ai.thread(t) for t in ids)])
        threads += len(ids)
        start += _BATCH
    start = 0
    while True:
        members = await client.zrange(
            wf.by_status(WorkflowStatus.RUNNING.value), start, start + _BATCH - 1
        )
        if not members:
            break
        ids = [run_member_id(text(m)) for m in members]
        keys = [wf.idle(), wf.undispatched()]
        for run_id in ids:
            keys += [wf.run(run_id), wf.steps(run_id)]
        await scripts("layout_migrate_runs", keys, ids)
        runs += len(ids)
        start += _BATCH
    logger.info(
        "redis namespace %s migrated to layout 2 (%s threads, %s running runs)",
        prefix,
        threads,
        runs,
    )
